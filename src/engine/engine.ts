/**
 * The imperative shell around the core: takes the lease, reads every target, asks the core what to
 * do, executes the write plan target by target (record → compare-and-set write → read back →
 * record), and folds the result back into the store. A crash anywhere leaves a transition in the
 * state; the next mutating command resumes it and converges on the crash-free result (S4).
 */
import { hostname, userInfo } from 'node:os';
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { createProvider } from '../../providers/index.js';
import type { Provider, ProviderNotice } from '../../providers/types.js';
import type { Clock } from '../clock.js';
import type { RingConfig, TargetConfig } from '../config/schema.js';
import { changedVariables, holdsKeySet, renderKeySet } from '../core/keyset.js';
import { STEM_ENV } from '../stem/signing-env.js';
import {
  agreedFingerprints,
  assertActionApplies,
  assertWriteSafe,
  bootstrapState,
  checkTargets,
  completeTransition,
  discardUnwrittenTransition,
  withGateProgress,
  nextGateSlot,
  planAbort,
  planAdvance,
  planRevoke,
  planStart,
  recordWrite,
  rekeyTransition,
  revokeNeedsNewKey,
  rotationDue,
  type AdvanceDecision,
} from '../core/machine.js';
import { phaseOf, type GateOutcome, type ObservedTarget, type RingState, type Transition, type WriteRecord } from '../core/types.js';
import { ConfigError, ConflictError, ExitCode, GateBlockedError, InternalError, LeaseHeldError, PartialFailureError, PlanChangedError, RotorError, TargetContentError, isRotorError } from '../errors.js';
import { buildGates, evaluateGates, gateName, type GateResult } from '../gates/index.js';
import { generateKey, generateKeyId, keyFingerprint, type KeyMaterial, type RandomBytes } from '../stem/keys.js';
import type { AuditEvent, Lease, StateStore } from '../store/types.js';
import { buildStatus, type StatusReport } from './status.js';
import { stuckFor } from '../core/schedule.js';
import { formatDuration } from '../core/duration.js';
import { StemSources } from '../stem/sources.js';
import { isNetworkError } from '../../providers/retry.js';
import { contentHash, sealPlan, situationChanges, stateVersion, transitionChanges, type SavedPlan } from '../core/saved-plan.js';
import { fieldName, readTarget, toFields, writeOrder, type TargetHandle, type TargetRead } from './targets.js';

export interface Actor {
  readonly user: string;
  readonly host: string;
}

export function currentActor(): Actor {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return { user, host: hostname() };
}

export interface EngineDeps {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly randomBytes?: RandomBytes;
  readonly actor?: Actor;
  readonly providerFor?: (target: TargetConfig, notice?: ProviderNotice) => Promise<Provider>;
  /** Progress lines (one per target write); never given key material. */
  readonly progress?: (line: string) => void;
  /** @default 300_000 */
  readonly leaseTtlMs?: number;
  /** Compare-and-set retries per target after a concurrent change. @default 3 */
  readonly casRetries?: number;
}

export interface Override {
  readonly gate: string;
  readonly reason: string;
}

export interface StepOptions {
  readonly dryRun?: boolean;
  /** Apply exactly this saved plan (`--plan`), or refuse naming what changed since. */
  readonly plan?: SavedPlan;
  readonly approve?: boolean;
  readonly overrides?: readonly Override[];
  readonly reason?: string;
}

export interface PlannedWrite {
  readonly target: string;
  readonly audience: string;
  readonly location: string;
  readonly fields: readonly string[];
  readonly before: { readonly keyIds: readonly string[]; readonly activeKeyId: string | null };
  readonly after: { readonly keyIds: readonly string[]; readonly activeKeyId: string | null };
  readonly change: boolean;
}

export interface StepResult {
  readonly ring: string;
  readonly action: string;
  readonly outcome: 'done' | 'resumed' | 'planned' | 'blocked' | 'stuck' | 'noop';
  readonly phase: string;
  readonly transition?: { readonly kind: string; readonly from: Transition['from']; readonly desired: Transition['desired'] };
  readonly gates: readonly GateResult[];
  readonly writes: readonly (WriteRecord | PlannedWrite)[];
  readonly message: string;
  readonly newKey?: { readonly id: string; readonly fingerprint: string | null };
  /** A dry run's plan, to save with `--out` and apply with `--plan`. */
  readonly plan?: SavedPlan;
}

/** The ids a step's transition gets: fresh, or a saved plan's. */
interface StepIds {
  readonly transitionId: string;
  readonly rotationId: string;
  readonly newKeyId: () => string;
}

export class RingEngine {
  private handles: TargetHandle[] | null = null;
  /** What providers did on their own (a dead writer's lock broken), audited by the command. */
  private readonly notices: { action: string; details: Readonly<Record<string, unknown>> }[] = [];
  private readonly randomBytes: RandomBytes;
  private readonly actor: Actor;
  readonly ring: RingConfig;
  private readonly deps: EngineDeps;

  constructor(ring: RingConfig, deps: EngineDeps) {
    this.ring = ring;
    this.deps = deps;
    this.randomBytes = deps.randomBytes ?? cryptoRandomBytes;
    this.actor = deps.actor ?? currentActor();
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  private id(prefix: string): string {
    return `${prefix}-${this.deps.clock.now().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${this.randomBytes(4).toString('hex')}`;
  }

  /** A scheme id not used in this ring before (the 4 hex digits can collide within a day). */
  private freshKeyId(state: RingState): string {
    const used = new Set([...state.keys.map((key) => key.id), ...state.revokedKeyIds, ...(state.transition ? [...state.transition.desired.keyIds, ...state.transition.tolerated] : [])]);
    for (;;) {
      const id = generateKeyId(this.ring.keyIdPrefix ?? '', this.deps.clock.now(), this.randomBytes);
      if (!used.has(id)) return id;
    }
  }

  async targets(): Promise<TargetHandle[]> {
    if (!this.handles) {
      const factory = this.deps.providerFor ?? createProvider;
      const notice: ProviderNotice = (action, details) => this.notices.push({ action, details });
      this.handles = await Promise.all(this.ring.targets.map(async (config) => ({ config, provider: await factory(config, notice) })));
    }
    return this.handles;
  }

  /** Reads every target; any unreadable or unparseable target refuses the whole command (S7). */
  async readAll(): Promise<TargetRead[]> {
    const handles = await this.targets();
    return Promise.all(handles.map((handle) => readTarget(this.ring, handle)));
  }

  async storeResidue(): Promise<readonly string[]> {
    return this.deps.store.residue(this.ring.name);
  }

  async audit(action: string, outcome: AuditEvent['outcome'], details?: Record<string, unknown>): Promise<void> {
    await this.deps.store.appendAudit({ time: this.now(), ring: this.ring.name, actor: this.actor, action, outcome, ...(details ? { details } : {}) });
  }

  /** The stored state, or — first time — one built from the targets, which must agree. */
  async currentState(reads?: readonly TargetRead[]): Promise<{ state: RingState; bootstrapped: boolean }> {
    const stored = await this.deps.store.load(this.ring.name);
    if (stored) {
      if (stored.algorithm !== this.ring.algorithm) {
        throw new ConfigError(`ring "${this.ring.name}" is configured as ${this.ring.algorithm} but its state is ${stored.algorithm}; changing algorithm needs a new ring`);
      }
      return { state: stored, bootstrapped: false };
    }
    const observed = (reads ?? (await this.readAll())).map((read) => read.observed);
    return { state: bootstrapState(this.ring.name, this.ring.algorithm, observed, this.now()), bootstrapped: true };
  }

  private async withLease<T>(action: string, work: (lease: Lease) => Promise<T>, preempt = false): Promise<T> {
    let lease: Lease;
    try {
      lease = await this.deps.store.acquire(this.ring.name, {
        owner: `${this.actor.user}@${this.actor.host} pid ${process.pid} (${action})`,
        token: this.randomBytes(16).toString('hex'),
        ttlMs: this.deps.leaseTtlMs ?? 300_000,
        preempt,
      });
    } catch (error) {
      if (error instanceof LeaseHeldError) {
        error.message = `${error.message}. Another command is working on this ring; when it is done, run \`stem-rotor status ${this.ring.name}\` and then the next step it shows (an emergency \`stem-rotor revoke\` pre-empts it)`;
      }
      throw error;
    }
    if (preempt) await this.audit(action, 'ok', { lease: 'pre-empted', fence: lease.fence });
    let failed = false;
    try {
      await this.removeResidue(action);
      return await work(lease);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // Auditing what providers did must neither hide the command's own error nor keep the lease.
      const flushed = await this.flushNotices().then(
        () => null,
        (error: unknown) => error,
      );
      await this.deps.store.release(lease);
      if (flushed !== null && !failed) throw flushed;
    }
  }

  /** Holding the lease, no other writer of these targets runs: what crashed writers left can go. */
  private async removeResidue(action: string): Promise<void> {
    for (const handle of await this.targets()) {
      const removed = (await handle.provider.removeResidue?.()) ?? [];
      if (removed.length > 0) await this.audit(action, 'ok', { target: handle.config.name, removedTempFiles: removed });
    }
  }

  private async flushNotices(): Promise<void> {
    for (const notice of this.notices.splice(0)) await this.audit(notice.action, 'ok', notice.details);
  }

  /**
   * Everything a mutating command can check before it takes (or pre-empts) the lease: every target
   * readable, parseable and writable here. A refusal here changes nothing anywhere.
   */
  private async preflight(command: string): Promise<TargetRead[]> {
    const reads = await this.readAll();
    try {
      await Promise.all((await this.targets()).map((handle) => handle.provider.preflightWrite?.()));
    } catch (error) {
      // Refused before anything was written: say what to run once the cause is fixed.
      if (isRotorError(error)) error.message = `${error.message}. Nothing was written; once fixed, run: stem-rotor ${command}`;
      throw error;
    }
    return reads;
  }

  /** The gates of the next step, and the state with what incremental gates read (null: nothing new). */
  private async evaluate(state: RingState, options: StepOptions): Promise<{ gates: GateResult[]; progressed: RingState | null }> {
    const slot = nextGateSlot(state);
    if (!slot) return { gates: [], progressed: null };
    const stem = this.ring.stem ? new StemSources(this.ring.stem) : null;
    let results: GateResult[];
    try {
      results = await evaluateGates(buildGates(this.ring, slot), { ring: this.ring, state, slot, now: this.deps.clock.now(), approved: options.approve ?? false, stem });
    } finally {
      await stem?.close();
    }
    const overrides = options.overrides ?? [];
    this.assertOverridesKnown(state, overrides);
    const gates = results.map(({ carry: _carry, ...result }) => {
      const override = overrides.find((candidate) => candidate.gate === result.name);
      return override && result.verdict !== 'pass' ? { ...result, overridden: { reason: override.reason, by: `${this.actor.user}@${this.actor.host}` } } : result;
    });
    return { gates, progressed: withGateProgress(state, results.map((result) => result.carry)) };
  }

  /** An --override must name a gate of the next step; checked before the lease, so a typo changes nothing. */
  private assertOverridesKnown(state: RingState, overrides: readonly Override[]): void {
    const slot = nextGateSlot(state);
    const names = slot ? this.ring.gates[slot].map(gateName) : [];
    for (const override of overrides) {
      if (!names.includes(override.gate)) {
        throw new ConfigError(`--override ${override.gate}: no such gate before the next step of ring "${this.ring.name}" (gates: ${names.join(', ') || 'none'})`);
      }
    }
  }

  // ---------------------------------------------------------------- commands

  async status(): Promise<StatusReport> {
    const handles = await this.targets();
    const reads = await Promise.all(
      handles.map(async (handle) => {
        try {
          return { handle, read: await readTarget(this.ring, handle) };
        } catch (error) {
          return { handle, error: (error as Error).message, badInput: isRotorError(error) && error.exitCode === ExitCode.usage };
        }
      }),
    );
    const good = reads.flatMap((entry) => (entry.read ? [entry.read] : []));
    const failed = reads.filter((entry) => entry.error !== undefined);
    if (failed.length > 0 && !(await this.deps.store.load(this.ring.name))) {
      const message = `ring "${this.ring.name}": cannot read ${failed.map((f) => `"${f.handle.config.name}" (${f.error})`).join(', ')}`;
      throw failed.every((f) => f.badInput) ? new ConfigError(message) : new RotorError(message);
    }
    const { state } = await this.currentState(good);
    const gates = state.transition ? [] : (await this.evaluate(state, {})).gates;
    return buildStatus(this.ring, state, reads.map((entry) => ({ name: entry.handle.config.name, audience: entry.handle.config.audience, provider: entry.handle.provider, read: entry.read, error: entry.error })), gates, this.deps.clock.now());
  }

  async start(options: StepOptions = {}): Promise<StepResult> {
    return this.step('start', options, async (state, _gates, ids) => ({ kind: 'planned', state: planStart(state, { now: this.now(), transitionId: ids.transitionId, rotationId: ids.rotationId, newKeyId: ids.newKeyId() }) }));
  }

  async advance(options: StepOptions = {}): Promise<StepResult> {
    return this.step('advance', options, async (state, gates, ids) => planAdvance(state, gates, { now: this.now(), transitionId: ids.transitionId }));
  }

  async abort(options: StepOptions = {}): Promise<StepResult> {
    return this.step('abort', options, async (state, gates, ids) =>
      planAbort(state, gates, { now: this.now(), transitionId: ids.transitionId, ...(options.reason ? { reason: options.reason } : {}) }),
    );
  }

  /** A saved plan's ids, so the apply writes exactly the key id the plan showed; else fresh ones. */
  private stepIds(state: RingState, plan: SavedPlan | undefined): StepIds {
    if (plan) return { transitionId: plan.transition.id, rotationId: plan.transition.rotationId ?? this.id('rot'), newKeyId: () => plan.transition.generatedKeyId ?? this.freshKeyId(state) };
    return { transitionId: this.id('t'), rotationId: this.id('rot'), newKeyId: () => this.freshKeyId(state) };
  }

  /** Refuses a saved plan the ring, its state or its targets no longer match. */
  private assertPlanSituation(plan: SavedPlan | undefined, action: string, state: RingState, reads: readonly TargetRead[]): void {
    if (!plan) return;
    const changes = situationChanges(plan, { ring: this.ring.name, action, stateVersion: stateVersion(state), targets: reads.map((read) => ({ name: read.handle.config.name, contentHash: contentHash(read.snapshot.fields) })) });
    if (changes.length > 0) throw this.planChanged(action, changes);
  }

  private planChanged(action: string, changes: readonly string[]): PlanChangedError {
    return new PlanChangedError(`the saved plan no longer applies; nothing was written:\n  - ${changes.join('\n  - ')}\nnext: make a new plan with \`stem-rotor rotate ${action} ${this.ring.name} --dry-run --out plan.json\`, review it, then apply it with --plan plan.json`);
  }

  async revoke(keyId: string, options: StepOptions & { readonly reason: string }): Promise<StepResult> {
    const plan = async (state: RingState) => {
      const freshKeyId = revokeNeedsNewKey(state, keyId) ? this.freshKeyId(state) : null;
      return planRevoke(state, { now: this.now(), transitionId: this.id('t'), keyId, freshKeyId, reason: options.reason });
    };
    if (options.dryRun) {
      const reads = await this.readAll();
      const { state } = await this.currentState(reads);
      return this.describePlan('revoke', state, await plan(state), reads, [], options);
    }
    // Plan on what is known now: an unknown key id, missing material or an unwritable target refuses
    // the revoke before it pre-empts anyone's lease.
    const preflight = await this.preflight(`revoke ${this.ring.name} ${keyId} --reason "${options.reason.replace(/["\\$`]/g, '')}" --yes`);
    const { state: known } = await this.currentState(preflight);
    assertMaterialAvailable(this.ring, await plan(known), mergeMaterial(preflight));
    return this.withLease(
      'revoke',
      async (lease) => {
        const reads = await this.readAll();
        const { state } = await this.currentState(reads);
        const planned = await plan(state);
        await this.deps.store.save(planned, lease);
        await this.audit('revoke', 'planned', { keyId, reason: options.reason, desired: planned.transition?.desired, preempted: state.transition?.kind ?? null });
        const done = await this.execute(planned, lease, 'revoke');
        return this.result('revoke', 'done', done.state, planned.transition as Transition, [], done.writes, `revoked "${keyId}"`);
      },
      true,
    );
  }

  /** `run --once` for this ring: resume, start when the key is too old, advance when allowed. */
  async runOnce(): Promise<StepResult> {
    const { state } = await this.currentState();
    if (state.transition) return this.advance();
    const now = this.deps.clock.now();
    if (!state.rotation) {
      if (!rotationDue(state, this.ring.keyIdPrefix ?? '', this.ring.policy.maxAge, now)) {
        return this.result('run', 'noop', state, null, [], [], `active key "${state.activeKeyId}" is younger than maxAge`);
      }
      const window = this.ring.policy.startWindow;
      if (window && !(await import('../core/cron-window.js')).insideWindow(window, now)) {
        return this.result('run', 'noop', state, null, [], [], `rotation due, but outside the start window (${this.ring.policy.startWindow?.cron})`);
      }
      return this.start();
    }
    if (!this.ring.policy.autoAdvance) {
      return this.result('run', 'noop', state, null, [], [], 'rotation in progress; autoAdvance is off (run `rotate advance`)');
    }
    try {
      return await this.advance();
    } catch (error) {
      if (!(error instanceof GateBlockedError)) throw error;
      const stuck = stuckFor(state, this.ring.policy.stuckAfter, now);
      if (stuck === null) return this.result('run', 'blocked', state, null, [], [], error.message);
      await this.audit('run', 'blocked', { stuck: true, waitedMs: stuck });
      return this.result('run', 'stuck', state, null, [], [], `STUCK for ${formatDuration(stuck)} (policy.stuckAfter ${formatDuration(this.ring.policy.stuckAfter as number)}): ${error.message}`);
    }
  }

  // ---------------------------------------------------------------- mechanics

  private async step(
    action: string,
    options: StepOptions,
    decide: (state: RingState, gates: readonly GateOutcome[], ids: StepIds) => Promise<AdvanceDecision>,
  ): Promise<StepResult> {
    if (options.dryRun) {
      const reads = await this.readAll();
      const { state } = await this.currentState(reads);
      if (state.transition) return this.describePlan(action, state, state, reads, [], options);
      checkTargets(state, reads.map((read) => read.observed));
      const { gates } = await this.evaluate(state, options);
      const decision = await decide(state, gates, this.stepIds(state, undefined));
      if (decision.kind === 'blocked') throw blocked(this.ring.name, action, decision.gates);
      return this.describePlan(action, state, decision.state, reads, gates, options);
    }
    // Refuse bad target content, drift and unwritable targets before taking the lease: bad input writes nothing anywhere.
    const preflight = await this.preflight(`rotate ${action} ${this.ring.name}`);
    const { state: known } = await this.currentState(preflight);
    this.assertPlanSituation(options.plan, action, known, preflight);
    if (!known.transition) {
      checkTargets(known, preflight.map((read) => read.observed));
      if (action === 'start' || action === 'advance' || action === 'abort') assertActionApplies(known, action);
      this.assertOverridesKnown(known, options.overrides ?? []);
    }
    return this.withLease(action, async (lease) => {
      const reads = await this.readAll();
      const { state, bootstrapped } = await this.currentState(reads);
      this.assertPlanSituation(options.plan, action, state, reads);
      if (bootstrapped) {
        await this.deps.store.save(state, lease);
        await this.audit('adopt', 'ok', { keys: state.keys.map((key) => `${key.id}=${key.fingerprint}`), activeKeyId: state.activeKeyId });
      }
      const discarded = action === 'abort' ? discardUnwrittenTransition(state, this.now()) : null;
      if (discarded && state.transition) {
        await this.deps.store.save(discarded, lease);
        await this.audit('abort', 'ok', { discarded: state.transition.kind, transitionId: state.transition.id, why: 'no target was written yet', ...(options.reason ? { reason: options.reason } : {}) });
        return this.result('abort', 'done', discarded, null, [], [], `discarded the ${state.transition.kind} that had written nothing; ring is ${phaseOf(discarded)}`);
      }
      if (state.transition) {
        await this.audit(action, 'ok', { resumed: state.transition.kind, transitionId: state.transition.id });
        const done = await this.execute(state, lease, action);
        return this.result(action, 'resumed', done.state, state.transition, state.transition.gates, done.writes, `resumed the interrupted ${state.transition.kind}`);
      }
      checkTargets(state, reads.map((read) => read.observed));
      const { gates, progressed } = await this.evaluate(state, options);
      // What incremental gates read is kept even when they block: the next run goes on from there.
      if (progressed) await this.deps.store.save(progressed, lease);
      const decision = await decide(progressed ?? state, gates, this.stepIds(state, options.plan));
      if (decision.kind === 'blocked') {
        await this.audit(action, 'blocked', { gates: decision.gates, ...(options.plan ? { plan: options.plan.hash } : {}) });
        if (options.plan) throw this.planChanged(action, decision.gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden).map((gate) => `gate ${gate.name} now ${gate.verdict}: ${gate.reason}`));
        throw blocked(this.ring.name, action, decision.gates);
      }
      const planned = decision.state;
      const transition = planned.transition as Transition;
      const drift = options.plan ? transitionChanges(options.plan, transition, gates) : [];
      if (drift.length > 0) throw this.planChanged(action, drift);
      for (const gate of gates.filter((g) => g.overridden)) {
        await this.audit('override', 'overridden', { gate: gate.name, verdict: gate.verdict, gateReason: gate.reason, reason: gate.overridden?.reason, transition: transition.kind });
      }
      await this.deps.store.save(planned, lease);
      await this.audit(action, 'planned', { transition: transition.kind, transitionId: transition.id, from: transition.from, desired: transition.desired, gates, ...(options.reason ? { reason: options.reason } : {}), ...(options.plan ? { plan: options.plan.hash } : {}) });
      const done = await this.execute(planned, lease, action);
      const finish = transition.kind === 'rollback' ? `; ACTIVE is the old key again — the abort finishes (the new key is removed) with \`stem-rotor rotate advance ${this.ring.name}\` once the drop gates pass` : '';
      return this.result(action, 'done', done.state, transition, gates, done.writes, `${transition.kind}: ring is now ${phaseOf(done.state)}${finish}`);
    });
  }

  /**
   * Runs the state's transition to completion. Re-reads and re-validates everything first, so it is
   * also the resume path: targets already at the desired set are recorded, not rewritten.
   */
  private async execute(initial: RingState, lease: Lease, action: string): Promise<{ state: RingState; writes: WriteRecord[] }> {
    let state = initial;
    const reads = await this.readAll();
    const fingerprints = checkTargets(state, reads.map((read) => read.observed));
    const material = mergeMaterial(reads);
    const latest = new Map(reads.map((read) => [read.handle.config.name, read]));

    const ensured = await this.ensureMaterial(state, material, lease, action);
    state = ensured.state;
    const transition = state.transition as Transition;
    for (const [id, key] of ensured.generated) fingerprints.set(id, keyFingerprint(this.ring.algorithm, key));

    const handles = writeOrder(await this.targets());
    let saving = Promise.resolve();
    const save = (next: (current: RingState) => RingState): Promise<void> => {
      saving = saving.then(async () => {
        state = next(state);
        await this.deps.store.save(state, lease);
      });
      return saving;
    };

    /** A verified write's after-write step (rolling restart): recorded pending, run, recorded done. */
    const afterWrite = async (handle: TargetHandle, verified: WriteRecord): Promise<void> => {
      if (!handle.provider.afterWrite || verified.afterWrite === 'done') return;
      await save((s) => recordWrite(s, { ...verified, afterWrite: 'pending' }, this.now()));
      await handle.provider.afterWrite();
      await save((s) => recordWrite(s, { ...verified, afterWrite: 'done' }, this.now()));
      this.progress(`${this.ring.name}/${handle.config.name}: after-write step done (${transition.kind})`);
    };

    const writeOne = async (handle: TargetHandle): Promise<void> => {
      const name = handle.config.name;
      const previous = transition.writes[name];
      for (let attempt = 0; ; attempt += 1) {
        const read = latest.get(name) as TargetRead;
        if (holdsKeySet(read.observed, transition.desired, fingerprints)) {
          // Written by an earlier attempt of this transition (a failure after the write landed keeps writtenAt).
          const written = previous?.status === 'writing' || previous?.status === 'verified' || (previous?.status === 'failed' && previous.writtenAt !== undefined);
          const status = written ? 'verified' : 'unchanged';
          const record: WriteRecord = { target: name, status, version: read.snapshot.version, fingerprints: fingerprintList(read.observed), verifiedAt: this.now(), ...(previous?.afterWrite ? { afterWrite: previous.afterWrite } : {}) };
          await save((s) => recordWrite(s, record, this.now()));
          this.progress(`${this.ring.name}/${name}: ${status === 'unchanged' ? 'already holds the desired keys' : 'verified'} (${transition.kind})`);
          // Resuming a write that landed: its after-write step may never have run, or failed.
          if (status === 'verified') await afterWrite(handle, record);
          return;
        }
        assertWriteSafe(transition, read.observed, [...latest.values()].map((r) => r.observed));
        const rendered = toFields(handle.config, renderKeySet(this.ring.algorithm, handle.config.audience, transition.desired, material));
        const fields = Object.fromEntries(Object.entries(rendered).filter(([field, value]) => read.snapshot.fields[field] !== value));
        await save((s) => recordWrite(s, { target: name, status: 'writing', writtenAt: this.now() }, this.now()));
        this.progress(`${this.ring.name}/${name}: writing ${Object.keys(fields).join(', ')} (${transition.kind})`);
        try {
          await handle.provider.write({ set: fields, expectedVersion: read.snapshot.version, idempotencyKey: `${transition.id}:${name}` });
        } catch (error) {
          // Refused before anything was sent (provider contract): the target was not touched.
          if (error instanceof TargetContentError) await save((s) => recordWrite(s, { target: name, status: 'pending', error: error.message }, this.now()));
          if (!(error instanceof ConflictError) || attempt >= (this.deps.casRetries ?? 3)) throw error;
          this.progress(`${this.ring.name}/${name}: changed concurrently; re-reading and re-validating`);
          const fresh = await readTarget(this.ring, handle);
          checkTargets(state, [fresh.observed]);
          agreedFingerprints([fresh.observed], [...fingerprints].map(([id, fingerprint]) => ({ id, fingerprint, createdAt: '' })));
          latest.set(name, fresh);
          continue;
        }
        const back = await readTarget(this.ring, handle);
        latest.set(name, back);
        if (!holdsKeySet(back.observed, transition.desired, fingerprints)) {
          throw new RotorError(`target "${name}": read-back after the write does not match (holds ${back.observed.keys.map((k) => `${k.id}=${k.fingerprint}`).join(',')}, active ${back.observed.activeKeyId ?? 'none'})`);
        }
        const verified: WriteRecord = { target: name, status: 'verified', version: back.snapshot.version, fingerprints: fingerprintList(back.observed), writtenAt: state.transition?.writes[name]?.writtenAt ?? this.now(), verifiedAt: this.now() };
        await save((s) => recordWrite(s, verified, this.now()));
        this.progress(`${this.ring.name}/${name}: verified ${back.snapshot.version}`);
        await afterWrite(handle, verified);
        return;
      }
    };

    if (transition.parallel) {
      const outcomes = await Promise.allSettled(handles.map((handle) => this.withRetries(() => writeOne(handle))));
      const bug = outcomes.find((outcome) => outcome.status === 'rejected' && outcome.reason instanceof InternalError);
      if (bug) throw (bug as PromiseRejectedResult).reason;
      const failures = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? [{ target: (handles[index] as TargetHandle).config.name, error: (outcome.reason as Error).message }] : []));
      if (failures.length > 0) {
        for (const failure of failures) await save((s) => recordFailure(s, failure.target, failure.error, this.now()));
        await this.audit(action, 'partial', { transition: transition.kind, failures });
        throw new PartialFailureError(`${transition.kind}: ${failures.length} of ${handles.length} targets failed (${failures.map((f) => `${f.target}: ${f.error}`).join('; ')}); re-run to converge`, failures);
      }
    } else {
      for (const [index, handle] of handles.entries()) {
        try {
          await this.withRetries(() => writeOne(handle));
        } catch (error) {
          const written = handles.slice(0, index).filter((done) => (state.transition as Transition).writes[done.config.name]?.status === 'verified').map((done) => done.config.name);
          // A tripped guard is a bug to report as one, never a target that merely failed.
          if (written.length === 0 || error instanceof InternalError) throw error;
          const failure = { target: handle.config.name, error: (error as Error).message };
          await saving;
          await save((s) => recordFailure(s, failure.target, failure.error, this.now()));
          const untouched = handles.slice(index + 1).map((rest) => rest.config.name);
          await this.audit(action, 'partial', { transition: transition.kind, written, failures: [failure], notAttempted: untouched });
          throw new PartialFailureError(
            `${transition.kind}: written ${written.join(', ')}; failed ${failure.target} (${failure.error})${untouched.length ? `; not attempted ${untouched.join(', ')}` : ''}. Targets now hold different key sets, which this step allows; fix the cause and re-run \`stem-rotor rotate advance ${this.ring.name}\` to converge`,
            [failure],
          );
        }
      }
    }
    await saving;
    const final = completeTransition(state, fingerprints, this.now());
    await this.deps.store.save(final, lease);
    await this.audit(action, 'ok', {
      transition: transition.kind,
      transitionId: transition.id,
      phase: phaseOf(final),
      keys: final.keys.map((key) => `${key.id}=${key.fingerprint}`),
      activeKeyId: final.activeKeyId,
    });
    return { state: final, writes: Object.values((state.transition as Transition).writes) };
  }

  /**
   * Bounded retries with backoff for socket-level failures a provider let through. Everything else is
   * final: content, conflict and provider errors (providers retry their own transient faults), and a
   * plain Error, which is a bug, not bad luck.
   */
  private async withRetries(work: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await work();
      } catch (error) {
        if (attempt >= 3 || !isNetworkError(error)) throw error;
        await this.deps.clock.sleep(50 * 2 ** attempt * (0.5 + this.randomBytes(1)[0]! / 255));
      }
    }
  }

  /**
   * Every key of the desired set must have material: recovered from targets (all holders agree), or
   * generated for the transition's new key when no target holds it yet.
   */
  private async ensureMaterial(
    initial: RingState,
    material: Map<string, KeyMaterial>,
    lease: Lease,
    action: string,
  ): Promise<{ state: RingState; generated: Map<string, KeyMaterial> }> {
    let state = initial;
    const generated = new Map<string, KeyMaterial>();
    const needsSecret = this.ring.targets.some((target) => target.audience === 'all');
    const transition = state.transition as Transition;
    const newId = transition.generatedKeyId;
    if (newId !== null) {
      const held = material.get(newId);
      if (held && !held.secret && needsSecret) {
        const freshId = this.freshKeyId(state);
        state = rekeyTransition(state, freshId, this.now());
        await this.deps.store.save(state, lease);
        await this.audit(action, 'ok', { rekeyed: { abandoned: newId, replacement: freshId }, why: 'the seed was never written to a signer target' });
        material.delete(newId);
      }
      const currentId = (state.transition as Transition).generatedKeyId as string;
      if (!material.has(currentId)) {
        const key = generateKey(this.ring.algorithm, currentId, this.randomBytes);
        material.set(currentId, key);
        generated.set(currentId, key);
      }
    }
    assertMaterialAvailable(this.ring, state, material);
    return { state, generated };
  }

  /** A dry run's result, with the plan `--out` saves: made on `before`, arriving at `planned`. */
  private async describePlan(action: string, before: RingState, planned: RingState, reads: readonly TargetRead[], gates: readonly GateResult[], options: StepOptions): Promise<StepResult> {
    const transition = planned.transition as Transition;
    const ordered = writeOrder(reads.map((read) => read.handle)).map((handle) => reads.find((r) => r.handle === handle) as TargetRead);
    const writes: PlannedWrite[] = ordered.map((read) => {
      const config = read.handle.config;
      const after = { keyIds: transition.desired.keyIds, activeKeyId: config.audience === 'verifiers' ? null : transition.desired.activeKeyId };
      const variables = changedVariables(this.ring.algorithm, read.observed, transition.desired, read.snapshot.fields[fieldName(config, STEM_ENV.algorithm)]);
      const fields = variables.map((variable) => fieldName(config, variable));
      const beforeSet = { keyIds: read.observed.keys.map((key) => key.id), activeKeyId: read.observed.activeKeyId };
      return { target: config.name, audience: config.audience, location: read.handle.provider.location, fields, before: beforeSet, after, change: fields.length > 0 };
    });
    const plan = sealPlan({
      ring: this.ring.name,
      action: action as SavedPlan['action'],
      createdAt: this.now(),
      stateVersion: stateVersion(before),
      transition: { id: transition.id, kind: transition.kind, rotationId: transition.rotationId, from: transition.from, desired: transition.desired, generatedKeyId: transition.generatedKeyId },
      targets: ordered.map((read, index) => {
        const write = writes[index] as PlannedWrite;
        return { name: write.target, location: write.location, contentHash: contentHash(read.snapshot.fields), fields: [...write.fields], before: write.before, after: write.after };
      }),
      gates: gates.map((gate) => ({ name: gate.name, verdict: gate.verdict, reason: gate.reason, ...(gate.overridden ? { overridden: gate.overridden } : {}) })),
      approved: options.approve ?? false,
      ...(options.reason ? { reason: options.reason } : {}),
    });
    const generated = transition.generatedKeyId && !before.transition ? ` (new key "${transition.generatedKeyId}": --out FILE saves this plan and --plan FILE applies exactly it, key id included; its material is generated then)` : '';
    return { ...this.result(action, 'planned', planned, transition, gates, writes, `dry run: ${transition.kind} would write ${writes.filter((w) => w.change).length} of ${writes.length} targets; nothing was written${generated}`), plan };
  }

  private result(action: string, outcome: StepResult['outcome'], state: RingState, transition: Transition | null, gates: readonly GateResult[], writes: StepResult['writes'], message: string): StepResult {
    const base: StepResult = { ring: this.ring.name, action, outcome, phase: phaseOf(state), gates, writes, message };
    if (!transition) return base;
    const generated = transition.generatedKeyId;
    const newKey = generated && outcome !== 'planned' ? { id: generated, fingerprint: state.keys.find((key) => key.id === generated)?.fingerprint ?? null } : undefined;
    return { ...base, transition: { kind: transition.kind, from: transition.from, desired: transition.desired }, ...(newKey ? { newKey } : {}) };
  }

  private progress(line: string): void {
    this.deps.progress?.(line);
  }
}

/** A failed target keeps what its record knew (when it was written, a pending after-write step). */
function recordFailure(state: RingState, target: string, error: string, now: string): RingState {
  return recordWrite(state, { ...state.transition?.writes[target], target, status: 'failed', error }, now);
}

/** Every key the transition writes has material (its generated key excepted: that is made when applied). */
function assertMaterialAvailable(ring: RingConfig, state: RingState, material: ReadonlyMap<string, KeyMaterial>): void {
  const transition = state.transition as Transition;
  const needsSecret = ring.targets.some((target) => target.audience === 'all');
  for (const id of transition.desired.keyIds) {
    if (id === transition.generatedKeyId && !material.has(id)) continue;
    const key = material.get(id);
    if (!key || (needsSecret && !key.secret)) {
      throw new RotorError(`ring "${ring.name}": no target holds the ${key ? 'secret of' : 'material for'} key "${id}"; it cannot be written`);
    }
  }
}

function fingerprintList(observed: ObservedTarget): string[] {
  return observed.keys.map((key) => `${key.id}=${key.fingerprint}`);
}

/** Key material by id across targets: seeds from signer targets, public keys from any. */
export function mergeMaterial(reads: readonly TargetRead[]): Map<string, KeyMaterial> {
  const merged = new Map<string, KeyMaterial>();
  for (const read of reads) {
    for (const [id, key] of read.material) {
      const known = merged.get(id);
      merged.set(id, { id, ...(known ?? {}), ...(key.secret ? { secret: key.secret } : {}), ...(key.publicKey ? { publicKey: key.publicKey } : {}) });
      if (known?.secret && !key.secret) merged.set(id, { ...(merged.get(id) as KeyMaterial), secret: known.secret });
    }
  }
  return merged;
}

function blocked(ring: string, action: string, gates: readonly GateOutcome[]): GateBlockedError {
  const holding = gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden);
  const reasons = holding.map((gate) => `${gate.name} (${gate.verdict}): ${gate.reason}`);
  const command = `stem-rotor rotate ${action === 'run' ? 'advance' : action} ${ring}`;
  const next = [
    `next: once the evidence changes, run \`${command}\` again (\`stem-rotor run\` retries by itself when autoAdvance is on); \`stem-rotor status ${ring}\` shows each gate's evidence`,
    `or, if you know better than the evidence: \`${command} --override ${holding[0]?.name ?? 'GATE'} --reason "…"\` (once per gate; audited)`,
  ];
  return new GateBlockedError(`ring "${ring}": ${action} blocked by ${reasons.length} gate(s):\n  - ${reasons.join('\n  - ')}\n${next.join('\n')}`, reasons);
}

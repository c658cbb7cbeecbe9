/**
 * One command's view of a ring: its config and dependencies, the target handles (opened once), the
 * actor, ids, the audit trail and the lease. The engine's commands, the planner and the write loop
 * all work through it.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { createProvider } from '../../providers/index.js';
import type { ProviderNotice } from '../../providers/types.js';
import type { RingConfig } from '../config/schema.js';
import { bootstrapState } from '../core/guards.js';
import type { RingNotice } from '../core/events.js';
import { phaseOf, type RingState, type Transition, type WorkloadRollout } from '../core/types.js';
import { ConfigError, LeaseHeldError, isRotorError } from '../errors.js';
import type { GateResult } from '../gates/index.js';
import { generateKeyId, type RandomBytes } from '../stem/keys.js';
import type { AuditEvent, Lease } from '../store/types.js';
import { readTarget, type TargetHandle, type TargetRead } from './targets.js';
import { currentActor, type Actor, type EngineDeps, type StepResult } from './types.js';

export interface Preflight {
  readonly reads: readonly TargetRead[];
  readonly stored: RingState | null;
}

export class RingSession {
  private handles: TargetHandle[] | null = null;
  /** What providers did on their own (a dead writer's lock broken), audited by the command. */
  private readonly notices: { action: string; details: Readonly<Record<string, unknown>> }[] = [];
  readonly randomBytes: RandomBytes;
  readonly actor: Actor;
  readonly ring: RingConfig;
  readonly deps: EngineDeps;

  constructor(ring: RingConfig, deps: EngineDeps) {
    this.ring = ring;
    this.deps = deps;
    this.randomBytes = deps.randomBytes ?? cryptoRandomBytes;
    this.actor = deps.actor ?? currentActor();
  }

  now(): string {
    return this.deps.clock.now().toISOString();
  }

  id(prefix: string): string {
    return `${prefix}-${this.deps.clock.now().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${this.randomBytes(4).toString('hex')}`;
  }

  /** A scheme id not used in this ring before (the 4 hex digits can collide within a day). */
  freshKeyId(state: RingState): string {
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

  /** Every restarted workload of every target that restarts some. */
  async restartStatus(): Promise<WorkloadRollout[]> {
    const handles = await this.targets();
    return (await Promise.all(handles.map((handle) => handle.provider.restartStatus?.() ?? []))).flat();
  }

  /**
   * Tells people: a Kubernetes Event on every target that records them, and the notification sinks.
   * Best effort: a failure is audited and logged, never fails the command (the audit trail is the
   * record; these are for people).
   */
  async announce(notice: RingNotice): Promise<void> {
    for (const handle of await this.targets()) {
      if (!handle.provider.recordEvent) continue;
      await handle.provider.recordEvent(notice).catch((error: Error) => this.audit('event', 'failed', { target: handle.config.name, reason: notice.reason, error: error.message }));
    }
    const failed = (await this.deps.notify?.(notice)) ?? [];
    for (const failure of failed) {
      this.progress(`${this.ring.name}: notification ${failure.sink} (${notice.kind}) failed: ${failure.error}`);
      await this.audit('notify', 'failed', { sink: failure.sink, kind: notice.kind, error: failure.error });
    }
  }

  async storeResidue(): Promise<readonly string[]> {
    return this.deps.store.residue(this.ring.name);
  }

  async audit(action: string, outcome: AuditEvent['outcome'], details?: Record<string, unknown>): Promise<void> {
    await this.deps.store.appendAudit({ time: this.now(), ring: this.ring.name, actor: this.actor, action, outcome, ...(details ? { details } : {}) });
  }

  /** The stored state, or — first time — one built from the targets, which must agree. */
  async currentState(reads?: readonly TargetRead[], known?: RingState | null): Promise<{ state: RingState; bootstrapped: boolean }> {
    const stored = known === undefined ? await this.deps.store.load(this.ring.name) : known;
    if (stored) {
      if (stored.algorithm !== this.ring.algorithm) {
        throw new ConfigError(`ring "${this.ring.name}" is configured as ${this.ring.algorithm} but its state is ${stored.algorithm}; changing algorithm needs a new ring`);
      }
      return { state: stored, bootstrapped: false };
    }
    const observed = (reads ?? (await this.readAll())).map((read) => read.observed);
    return { state: bootstrapState(this.ring.name, this.ring.algorithm, observed, this.now()), bootstrapped: true };
  }

  async withLease<T>(action: string, work: (lease: Lease) => Promise<T>, preempt = false): Promise<T> {
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
  /** Every target read, and the ring's stored state after them, before the lease: refuses what would fail. */
  protected async preflight(command: string): Promise<Preflight> {
    const reads = await this.readAll();
    try {
      await Promise.all((await this.targets()).map((handle) => handle.provider.preflightWrite?.()));
    } catch (error) {
      // Refused before anything was written: say what to run once the cause is fixed.
      if (isRotorError(error)) error.message = `${error.message}. Nothing was written; once fixed, run: stem-rotor ${command}`;
      throw error;
    }
    return { reads, stored: await this.deps.store.load(this.ring.name) };
  }

  /**
   * The state and the target reads to plan on under the lease. The preflight's reads serve while the
   * stored state is what it was after them (no command of ours acted in between): a target changed
   * since fails its write's compare-and-set, and the write re-reads and re-validates it — as for a
   * change after any read. Otherwise, or when `again` (a saved plan is checked against what targets
   * hold under the lease), every target is read again.
   */
  protected async readUnderLease(preflight: Preflight, again = false): Promise<{ reads: readonly TargetRead[]; state: RingState; bootstrapped: boolean }> {
    const stored = await this.deps.store.load(this.ring.name);
    const reads = !again && JSON.stringify(stored) === JSON.stringify(preflight.stored) ? preflight.reads : await this.readAll();
    return { reads, ...(await this.currentState(reads, stored)) };
  }

  result(action: string, outcome: StepResult['outcome'], state: RingState, transition: Transition | null, gates: readonly GateResult[], writes: StepResult['writes'], message: string): StepResult {
    const base: StepResult = { ring: this.ring.name, action, outcome, phase: phaseOf(state), gates, writes, message };
    if (!transition) return base;
    const generated = transition.generatedKeyId;
    const newKey = generated && outcome !== 'planned' ? { id: generated, fingerprint: state.keys.find((key) => key.id === generated)?.fingerprint ?? null } : undefined;
    return { ...base, transition: { kind: transition.kind, from: transition.from, desired: transition.desired }, ...(newKey ? { newKey } : {}) };
  }

  progress(line: string): void {
    this.deps.progress?.(line);
  }
}

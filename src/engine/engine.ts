/**
 * The imperative shell around the core: the commands. Each takes the lease, reads every target, asks
 * the core what to do (`plan.ts` prepares and renders), and has `apply.ts` execute the write plan.
 * A crash anywhere leaves a transition in the state; the next mutating command resumes it and
 * converges on the crash-free result (S4).
 */
import { assertActionApplies, discardUnwrittenTransition, planAbort, planAdvance, planStart, type AdvanceDecision } from '../core/machine.js';
import { checkTargets } from '../core/guards.js';
import { planRevoke, revokeNeedsNewKey } from '../core/revoke.js';
import { rotationDue } from '../core/schedule.js';
import { formatDuration } from '../core/duration.js';
import { stuckFor } from '../core/schedule.js';
import { phaseOf, type GateOutcome, type RingState, type Transition } from '../core/types.js';
import { ConfigError, ExitCode, GateBlockedError, RotorError, isRotorError } from '../errors.js';
import { applyTransition, assertMaterialAvailable, mergeMaterial } from './apply.js';
import { assertOverridesKnown, assertPlanSituation, blocked, describePlan, evaluateStepGates, planChanged, stepIds } from './plan.js';
import { RingSession } from './session.js';
import { buildStatus, type StatusReport } from './status.js';
import { readTarget } from './targets.js';
import type { StepIds, StepOptions, StepResult } from './types.js';
import { transitionChanges } from '../core/saved-plan.js';

export type { Actor, EngineDeps, Override, PlannedWrite, StepOptions, StepResult } from './types.js';
export { currentActor } from './types.js';
export { mergeMaterial } from './apply.js';

export class RingEngine extends RingSession {
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
    const gates = state.transition ? [] : (await evaluateStepGates(this, state, {})).gates;
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

  async revoke(keyId: string, options: StepOptions & { readonly reason: string }): Promise<StepResult> {
    const plan = async (state: RingState) => {
      const freshKeyId = revokeNeedsNewKey(state, keyId) ? this.freshKeyId(state) : null;
      return planRevoke(state, { now: this.now(), transitionId: this.id('t'), keyId, freshKeyId, reason: options.reason });
    };
    if (options.dryRun) {
      const reads = await this.readAll();
      const { state } = await this.currentState(reads);
      return describePlan(this, 'revoke', state, await plan(state), reads, [], options);
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
        const done = await applyTransition(this, planned, lease, 'revoke', reads);
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

  /** Dry run, or lease → read → (resume | gates → decide → plan checks) → apply. */
  private async step(
    action: string,
    options: StepOptions,
    decide: (state: RingState, gates: readonly GateOutcome[], ids: StepIds) => Promise<AdvanceDecision>,
  ): Promise<StepResult> {
    if (options.dryRun) {
      const reads = await this.readAll();
      const { state } = await this.currentState(reads);
      if (state.transition) return describePlan(this, action, state, state, reads, [], options);
      checkTargets(state, reads.map((read) => read.observed));
      const { gates } = await evaluateStepGates(this, state, options);
      const decision = await decide(state, gates, stepIds(this, state, undefined));
      if (decision.kind === 'blocked') throw blocked(this.ring.name, action, decision.gates);
      return describePlan(this, action, state, decision.state, reads, gates, options);
    }
    // Refuse bad target content, drift and unwritable targets before taking the lease: bad input writes nothing anywhere.
    const preflight = await this.preflight(`rotate ${action} ${this.ring.name}`);
    const { state: known } = await this.currentState(preflight);
    assertPlanSituation(this, options.plan, action, known, preflight);
    if (!known.transition) {
      checkTargets(known, preflight.map((read) => read.observed));
      if (action === 'start' || action === 'advance' || action === 'abort') assertActionApplies(known, action);
      assertOverridesKnown(this, known, options.overrides ?? []);
    }
    return this.withLease(action, async (lease) => {
      const reads = await this.readAll();
      const { state, bootstrapped } = await this.currentState(reads);
      assertPlanSituation(this, options.plan, action, state, reads);
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
        const done = await applyTransition(this, state, lease, action, reads);
        return this.result(action, 'resumed', done.state, state.transition, state.transition.gates, done.writes, `resumed the interrupted ${state.transition.kind}`);
      }
      checkTargets(state, reads.map((read) => read.observed));
      const { gates, progressed } = await evaluateStepGates(this, state, options);
      // What incremental gates read is kept even when they block: the next run goes on from there.
      if (progressed) await this.deps.store.save(progressed, lease);
      const decision = await decide(progressed ?? state, gates, stepIds(this, state, options.plan));
      if (decision.kind === 'blocked') {
        await this.audit(action, 'blocked', { gates: decision.gates, ...(options.plan ? { plan: options.plan.hash } : {}) });
        if (options.plan) throw planChanged(this, action, decision.gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden).map((gate) => `gate ${gate.name} now ${gate.verdict}: ${gate.reason}`));
        throw blocked(this.ring.name, action, decision.gates);
      }
      const planned = decision.state;
      const transition = planned.transition as Transition;
      const drift = options.plan ? transitionChanges(options.plan, transition, gates) : [];
      if (drift.length > 0) throw planChanged(this, action, drift);
      for (const gate of gates.filter((g) => g.overridden)) {
        await this.audit('override', 'overridden', { gate: gate.name, verdict: gate.verdict, gateReason: gate.reason, reason: gate.overridden?.reason, transition: transition.kind });
      }
      await this.deps.store.save(planned, lease);
      await this.audit(action, 'planned', { transition: transition.kind, transitionId: transition.id, from: transition.from, desired: transition.desired, gates, ...(options.reason ? { reason: options.reason } : {}), ...(options.plan ? { plan: options.plan.hash } : {}) });
      const done = await applyTransition(this, planned, lease, action, reads);
      const finish = transition.kind === 'rollback' ? `; ACTIVE is the old key again — the abort finishes (the new key is removed) with \`stem-rotor rotate advance ${this.ring.name}\` once the drop gates pass` : '';
      return this.result(action, 'done', done.state, transition, gates, done.writes, `${transition.kind}: ring is now ${phaseOf(done.state)}${finish}`);
    });
  }
}

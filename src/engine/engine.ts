/**
 * The imperative shell around the core: the commands. Each takes the lease, reads every target, asks
 * the core what to do (`plan.ts` prepares and renders), and has `apply.ts` execute the write plan.
 * A crash anywhere leaves a transition in the state; the next mutating command resumes it and
 * converges on the crash-free result (S4).
 */
import { nextStep, recordApproval } from '../core/approval.js';
import { nextGateSlot, type Stamp } from '../core/machine.js';
import { blockKey, blockedEvent, failureNotice, transitionEvent } from '../core/events.js';
import { PREFLIGHT_START, plan, type Intent, type Plan } from '../core/plan.js';
import { gateName } from '../gates/index.js';
import { revokeNeedsNewKey } from '../core/revoke.js';
import { rotationDue, stuckFor } from '../core/schedule.js';
import { formatDuration } from '../duration.js';
import { phaseOf, type GateResult, type RingState } from '../core/types.js';
import type { Lease } from '../store/types.js';
import { ConfigError, ExitCode, GateBlockedError, InternalError, InvalidTransitionError, RotorError, isRotorError } from '../errors.js';
import { assertOverridesKnown, assertPlanSituation, blocked, evaluateStepGates, planChanged, renderPlan, stepIds, withOperatorApproval } from './plan.js';
import { RingSession } from './session.js';
import { buildStatus, type StatusReport } from './status.js';
import { readTarget, type TargetRead } from './targets.js';
import type { StepIds, StepOptions, StepResult } from './types.js';
import { transitionChanges } from '../core/saved-plan.js';

type StepAction = 'start' | 'advance' | 'abort';

function observedOf(reads: readonly TargetRead[]) {
  return reads.map((read) => read.observed);
}

export type { Actor, EngineDeps, Override, PlannedWrite, StepOptions, StepResult } from './types.js';
export { currentActor } from './types.js';

/** Writing targets (and what it brings: restart hooks, notifications' transport) loads only for a command that writes. */
function loadApply(): Promise<typeof import('./apply.js')> {
  return import('./apply.js');
}

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
    const { state, bootstrapped } = await this.currentState(good);
    const { gates } = await evaluateStepGates(this, state, {});
    return buildStatus(this.ring, state, reads.map((entry) => ({ name: entry.handle.config.name, audience: entry.handle.config.audience, provider: entry.handle.provider, read: entry.read, error: entry.error })), gates, this.deps.clock.now(), !bootstrapped);
  }

  async start(options: StepOptions = {}): Promise<StepResult> {
    return this.step('start', options);
  }

  async advance(options: StepOptions = {}): Promise<StepResult> {
    return this.step('advance', options);
  }

  async abort(options: StepOptions = {}): Promise<StepResult> {
    return this.step('abort', options);
  }

  async revoke(keyId: string, options: StepOptions & { readonly reason: string }): Promise<StepResult> {
    const decide = (state: RingState, reads: readonly TargetRead[]): Plan => {
      const freshKeyId = revokeNeedsNewKey(state, keyId) ? this.freshKeyId(state) : null;
      return plan(state, observedOf(reads), [], { kind: 'revoke', keyId, freshKeyId, reason: options.reason }, this.stamp(this.id('t')));
    };
    if (options.dryRun) {
      const reads = await this.readAll();
      const { state } = await this.currentState(reads);
      return renderPlan(this, 'revoke', state, decide(state, reads), reads, [], options);
    }
    // Plan on what is known now: an unknown key id, missing material or an unwritable target refuses
    // the revoke before it pre-empts anyone's lease.
    const preflight = await this.preflight(`revoke ${this.ring.name} ${keyId} --reason "${options.reason.replace(/["\\$`]/g, '')}" --yes`);
    const { state: known } = await this.currentState(preflight.reads, preflight.stored);
    const { applyTransition, assertMaterialAvailable, mergeMaterial } = await loadApply();
    assertMaterialAvailable(this.ring, inFlightOf(decide(known, preflight.reads)), mergeMaterial(preflight.reads));
    return this.announcingFailure('revoke', () => this.withLease(
      'revoke',
      async (lease) => {
        const { reads, state } = await this.readUnderLease(preflight);
        const planned = inFlightOf(decide(state, reads));
        await this.deps.store.save(planned, lease);
        await this.audit('revoke', 'planned', { keyId, reason: options.reason, desired: planned.transition.desired, preempted: state.transition?.kind ?? null });
        const done = await applyTransition(this, planned, lease, 'revoke', reads);
        await this.announce(transitionEvent(this.ring.name, planned.transition, phaseOf(done.state)));
        return this.result('revoke', 'done', done.state, planned.transition, [], done.writes, `revoked "${keyId}"`);
      },
      true,
    ));
  }

  /**
   * `run --once` for this ring: resume, start when the key is too old, advance when allowed.
   * `stored`: its state as just read with others' (undefined: read it now); every step that writes
   * reads it again under the lease.
   */
  async runOnce(stored?: RingState | null): Promise<StepResult> {
    const { state } = await this.currentState(undefined, stored);
    if (state.transition) return this.advance();
    const now = this.deps.clock.now();
    if (!state.rotation) {
      if (!rotationDue(state, this.ring.keyIdPrefix ?? '', this.ring.policy.maxAge, now)) {
        return this.result('run', 'noop', state, null, [], [], `active key "${state.activeKeyId}" is younger than maxAge`);
      }
      // A start outside its window or in a freeze is a quiet wait, neither audited nor an alarm.
      const { gates } = await evaluateStepGates(this, state, {});
      const holding = gates.filter((gate) => gate.verdict !== 'pass');
      if (holding.length > 0) return this.result('run', 'noop', state, null, gates, [], `rotation due, but ${holding.map((gate) => `${gate.name}: ${gate.reason}`).join('; ')}`);
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

  /** A block is news once per transition, set of holding gates and stuck-or-not: then it is recorded and announced. */
  private async announceBlock(state: RingState, action: string, gates: readonly GateResult[], lease: Lease): Promise<void> {
    const slot = nextGateSlot(state);
    const situation = {
      stuck: stuckFor(state, this.ring.policy.stuckAfter, this.deps.clock.now()) !== null,
      approvalGates: slot ? this.ring.gates[slot].filter((gate) => gate.type === 'approval').map(gateName) : [],
    };
    const key = blockKey(gates, situation);
    const notice = blockedEvent(this.ring.name, action, gates, situation);
    if (!notice || state.lastBlock === key) return;
    await this.deps.store.save({ ...state, lastBlock: key }, lease);
    await this.announce(notice);
  }

  /** A failed write, partial write or bug is announced; refusals (bad input, a block, a held lease) are not news. */
  private async announcingFailure<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isRotorError(error) && (error.exitCode === ExitCode.failure || error.exitCode === ExitCode.partial)) await this.announce(failureNotice(this.ring.name, action, error.message));
      throw error;
    }
  }

  private stamp(transitionId: string): Stamp {
    return { now: this.now(), transitionId, by: this.actor };
  }

  /** Records this actor's approval of the ring's next step (the `approval` gate counts it). */
  async approve(reason: string): Promise<StepResult> {
    return this.withLease('approve', async (lease) => {
      const { state } = await this.currentState();
      const slot = nextGateSlot(state);
      const names = slot ? this.ring.gates[slot].map(gateName) : [];
      if (slot && !this.ring.gates[slot].some((gate) => gate.type === 'approval')) {
        throw new ConfigError(`ring "${this.ring.name}": no approval gate guards the next step (gates: ${names.join(', ') || 'none'}); nothing was recorded. next: \`stem-rotor rotate advance ${this.ring.name}\``);
      }
      const approved = recordApproval(state, this.actor, reason, this.now());
      const { step, subject } = approved.approval;
      await this.deps.store.save(approved, lease);
      await this.audit('approve', 'ok', { step, subject, reason, rotation: state.rotation?.id });
      return this.result('approve', 'done', approved, null, [], [], `recorded ${this.actor.user}'s approval of the ${step} of rotation ${state.rotation?.id}; next: \`stem-rotor rotate advance ${this.ring.name}\` (\`stem-rotor run\` advances by itself when autoAdvance is on)`);
    });
  }

  /** A recorded refusal: audited, then the rotation is aborted. */
  async deny(reason: string): Promise<StepResult> {
    const { state } = await this.currentState();
    if (!state.rotation && !state.transition) throw new InvalidTransitionError(`ring "${this.ring.name}" has no rotation to deny; \`stem-rotor status ${this.ring.name}\` shows what it is doing`);
    await this.audit('deny', 'ok', { reason, rotation: state.rotation?.id ?? null, step: nextStep(state)?.step ?? null });
    return this.abort({ reason: `denied by ${this.actor.user}: ${reason}` });
  }

  /** Without ids (a check before the lease) or with a transition in flight, start's ids are never used. */
  private intent(action: StepAction, state: RingState, options: StepOptions, ids?: StepIds): Intent {
    if (action === 'start') return ids && !state.transition ? { kind: 'start', rotationId: ids.rotationId, newKeyId: ids.newKeyId() } : PREFLIGHT_START;
    return action === 'advance' ? { kind: 'advance' } : { kind: 'abort', ...(options.reason ? { reason: options.reason } : {}) };
  }

  /** Dry run (render the plan), or preflight → lease → read → gates → plan → apply. */
  private async step(action: StepAction, options: StepOptions): Promise<StepResult> {
    if (options.dryRun) {
      const reads = await this.readAll();
      const { state } = await this.currentState(reads);
      const { gates } = await evaluateStepGates(this, state, options);
      const ids = stepIds(this, state, undefined);
      return renderPlan(this, action, state, plan(state, observedOf(reads), gates, this.intent(action, state, options, ids), { now: this.now(), transitionId: ids.transitionId }), reads, gates, options);
    }
    // Refuse bad target content, drift, an action that does not apply and unwritable targets before
    // taking the lease: bad input writes nothing anywhere.
    const preflight = await this.preflight(`rotate ${action} ${this.ring.name}`);
    const { state: known } = await this.currentState(preflight.reads, preflight.stored);
    assertPlanSituation(this, options.plan, action, known, preflight.reads);
    if (!known.transition) {
      plan(known, observedOf(preflight.reads), [], this.intent(action, known, options), { now: this.now(), transitionId: 'preflight' });
      assertOverridesKnown(this, known, options.overrides ?? []);
    }
    return this.announcingFailure(action, () => this.withLease(action, async (lease) => {
      const { reads, state: current, bootstrapped } = await this.readUnderLease(preflight, options.plan !== undefined);
      assertPlanSituation(this, options.plan, action, current, reads);
      if (bootstrapped) {
        await this.deps.store.save(current, lease);
        await this.audit('adopt', 'ok', { keys: current.keys.map((key) => `${key.id}=${key.fingerprint}`), activeKeyId: current.activeKeyId });
      }
      const approved = withOperatorApproval(this, current, options);
      if (approved?.approval) {
        await this.deps.store.save(approved, lease);
        await this.audit('approve', 'ok', { step: approved.approval.step, subject: approved.approval.subject, reason: approved.approval.reason, via: '--approve' });
      }
      const state = approved ?? current;
      const { gates, progressed } = await evaluateStepGates(this, state, options);
      // What incremental gates read is kept even when they block: the next run goes on from there.
      if (progressed) await this.deps.store.save(progressed, lease);
      const ids = stepIds(this, state, options.plan);
      const decided = plan(progressed ?? state, observedOf(reads), gates, this.intent(action, state, options, ids), this.stamp(ids.transitionId));
      switch (decided.kind) {
        case 'discard': {
          const { discarded } = decided;
          await this.deps.store.save(decided.state, lease);
          await this.audit('abort', 'ok', { discarded: discarded.kind, transitionId: discarded.id, why: 'no target was written yet', ...(options.reason ? { reason: options.reason } : {}) });
          return this.result('abort', 'done', decided.state, null, [], [], `discarded the ${discarded.kind} that had written nothing; ring is ${phaseOf(decided.state)}`);
        }
        case 'resume': {
          const { transition } = decided.state;
          await this.audit(action, 'ok', { resumed: transition.kind, transitionId: transition.id });
          const done = await (await loadApply()).applyTransition(this, decided.state, lease, action, reads);
          await this.announce(transitionEvent(this.ring.name, transition, phaseOf(done.state)));
          return this.result(action, 'resumed', done.state, transition, transition.gates, done.writes, `resumed the interrupted ${transition.kind}`);
        }
        case 'blocked': {
          await this.audit(action, 'blocked', { gates: decided.gates, ...(options.plan ? { plan: options.plan.hash } : {}) });
          await this.announceBlock(progressed ?? state, action, decided.gates, lease);
          if (options.plan) throw planChanged(this, action, decided.gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden).map((gate) => `gate ${gate.name} now ${gate.verdict}: ${gate.reason}`));
          throw blocked(this.ring.name, action, decided.gates);
        }
        case 'transition': {
          const planned = decided.state;
          const { transition } = planned;
          const drift = options.plan ? transitionChanges(options.plan, transition, gates) : [];
          if (drift.length > 0) throw planChanged(this, action, drift);
          for (const gate of gates.filter((g) => g.overridden)) {
            await this.audit('override', 'overridden', { gate: gate.name, verdict: gate.verdict, gateReason: gate.reason, reason: gate.overridden?.reason, transition: transition.kind });
          }
          await this.deps.store.save(planned, lease);
          await this.audit(action, 'planned', { transition: transition.kind, transitionId: transition.id, from: transition.from, desired: transition.desired, gates, ...(options.reason ? { reason: options.reason } : {}), ...(options.plan ? { plan: options.plan.hash } : {}) });
          const done = await (await loadApply()).applyTransition(this, planned, lease, action, reads);
          await this.announce(transitionEvent(this.ring.name, transition, phaseOf(done.state)));
          const finish = transition.kind === 'rollback' ? `; ACTIVE is the old key again — the abort finishes (the new key is removed) with \`stem-rotor rotate advance ${this.ring.name}\` once the drop gates pass` : '';
          return this.result(action, 'done', done.state, transition, gates, done.writes, `${transition.kind}: ring is now ${phaseOf(done.state)}${finish}`);
        }
      }
    }));
  }
}

/** revoke always plans a transition. */
function inFlightOf(decided: Plan) {
  if (decided.kind !== 'transition') throw new InternalError(`revoke planned ${decided.kind}`);
  return decided.state;
}

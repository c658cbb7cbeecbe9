/**
 * Approvals as recorded acts (pure): which step of which rotation an approval is for, and recording
 * one. An approval binds to its step by a hash of the rotation, its phase, the step's kind and the
 * key sets it writes, so it never carries over to another step, rotation or plan.
 */
import { InvalidTransitionError } from '../errors.js';
import { planAdvance } from './machine.js';
import { sha256 } from './saved-plan.js';
import type { Actor, Approval, RingState, StepTransition } from './types.js';

export interface NextStep {
  readonly step: StepTransition['kind'];
  readonly subject: string;
}

/** The step `advance` would take next, with its subject hash; null when the ring is stable or a transition is in flight. */
export function nextStep(state: RingState): NextStep | null {
  const rotation = state.rotation;
  if (!rotation || state.transition) return null;
  const decision = planAdvance(state, [], { now: state.updatedAt, transitionId: 'approval-subject' });
  if (decision.kind !== 'planned' || decision.state.transition.kind === 'start' || decision.state.transition.kind === 'revoke') return null;
  const { kind, from, desired } = decision.state.transition;
  return { step: kind, subject: sha256('approval', { ring: state.ring, rotation: rotation.id, phase: rotation.phase, kind, from, desired }) };
}

/** The state with an approval of its next step by `by`; refused when nothing awaits a step. */
export function recordApproval(state: RingState, by: Actor, reason: string, now: string): RingState & { readonly approval: Approval } {
  const next = nextStep(state);
  if (!next) {
    const why = state.transition
      ? `its ${state.transition.kind} is still being written); finish it first: \`stem-rotor rotate advance ${state.ring}\``
      : `it is stable: there is no step to approve); a rotation starts with \`stem-rotor rotate start ${state.ring}\``;
    throw new InvalidTransitionError(`ring "${state.ring}": nothing to approve (${why}`);
  }
  return { ...state, approval: { by, at: now, reason, step: next.step, subject: next.subject }, updatedAt: now };
}

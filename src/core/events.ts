/**
 * What the ring tells people about itself (Kubernetes Events; later notifications), pure: one event
 * per completed transition and one per new reason to block. Key ids only, never material.
 */
import { gatesPass } from './machine.js';
import type { GateResult, RingEvent, Transition } from './types.js';

const REASONS: Record<Transition['kind'], string> = {
  start: 'KeyAdded',
  activate: 'KeyActivated',
  drop: 'OldKeyDropped',
  abort: 'RotationAborted',
  rollback: 'RotationRolledBack',
  revoke: 'KeyRevoked',
};

/** Kubernetes caps an Event's message at 1 kB. */
function capped(message: string): string {
  return message.length <= 1000 ? message : `${message.slice(0, 999)}…`;
}

export function transitionEvent(ring: string, transition: Transition, phase: string): RingEvent {
  const detail = transition.kind === 'revoke' ? `revoked ${transition.revokedKeyId}; ` : '';
  return {
    type: transition.kind === 'revoke' || transition.kind === 'rollback' ? 'Warning' : 'Normal',
    reason: REASONS[transition.kind],
    message: capped(`ring ${ring}: ${transition.kind} done, ${detail}phase ${phase}; keys ${transition.desired.keyIds.join(', ')}, active ${transition.desired.activeKeyId}${transition.reason ? `; reason: ${transition.reason}` : ''}`),
  };
}

/** Which gates hold the step and how: a block is news only when this changes. */
export function blockKey(gates: readonly GateResult[]): string {
  return gates
    .filter((gate) => gate.verdict !== 'pass' && !gate.overridden)
    .map((gate) => `${gate.name}:${gate.verdict}`)
    .sort()
    .join(',');
}

export function blockedEvent(ring: string, action: string, gates: readonly GateResult[]): RingEvent | null {
  if (gatesPass(gates)) return null;
  const holding = gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden);
  return { type: 'Warning', reason: 'GateBlocked', message: capped(`ring ${ring}: ${action} blocked by ${holding.map((gate) => `${gate.name} (${gate.verdict}): ${gate.reason}`).join('; ')}`) };
}

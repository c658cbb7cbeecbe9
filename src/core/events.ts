/**
 * What the ring tells people about itself — Kubernetes Events and notifications — pure: one notice
 * per completed transition, one per new reason to block (approval needed and stuck are their own
 * kinds), and one per failed command. Key ids only, never material.
 */
import { gatesPass } from './machine.js';
import type { GateResult, RingEvent, Transition } from './types.js';

export const NOTICE_KINDS = ['rotation-started', 'phase-advanced', 'gate-blocked', 'approval-needed', 'stuck', 'revoke', 'failure'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export interface RingNotice extends RingEvent {
  readonly kind: NoticeKind;
  readonly ring: string;
  /** Machine-readable facts: phase, transition, key ids, gates. */
  readonly details: Readonly<Record<string, unknown>>;
}

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

export function transitionEvent(ring: string, transition: Transition, phase: string): RingNotice {
  const detail = transition.kind === 'revoke' ? `revoked ${transition.revokedKeyId}; ` : '';
  return {
    kind: transition.kind === 'start' ? 'rotation-started' : transition.kind === 'revoke' ? 'revoke' : 'phase-advanced',
    ring,
    details: { transition: transition.kind, phase, keyIds: transition.desired.keyIds, activeKeyId: transition.desired.activeKeyId, ...(transition.kind === 'revoke' ? { revokedKeyId: transition.revokedKeyId } : {}) },
    type: transition.kind === 'revoke' || transition.kind === 'rollback' ? 'Warning' : 'Normal',
    reason: REASONS[transition.kind],
    message: capped(`ring ${ring}: ${transition.kind} done, ${detail}phase ${phase}; keys ${transition.desired.keyIds.join(', ')}, active ${transition.desired.activeKeyId}${transition.reason ? `; reason: ${transition.reason}` : ''}`),
  };
}

export interface BlockSituation {
  /** Blocked longer than policy.stuckAfter. */
  readonly stuck: boolean;
  /** Names of the approval gates before this step. */
  readonly approvalGates: readonly string[];
}

/** Which gates hold the step and how, and whether it is stuck: a block is news only when this changes. */
export function blockKey(gates: readonly GateResult[], situation: BlockSituation): string {
  const holding = gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden).map((gate) => `${gate.name}:${gate.verdict}`);
  return [...holding.sort(), ...(situation.stuck ? ['(stuck)'] : [])].join(',');
}

export function blockedEvent(ring: string, action: string, gates: readonly GateResult[], situation: BlockSituation): RingNotice | null {
  if (gatesPass(gates)) return null;
  const holding = gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden);
  const onlyApproval = holding.every((gate) => situation.approvalGates.includes(gate.name));
  const kind: NoticeKind = situation.stuck ? 'stuck' : onlyApproval ? 'approval-needed' : 'gate-blocked';
  const what = situation.stuck ? 'STUCK: ' : '';
  return {
    kind,
    ring,
    details: { action, gates: holding.map((gate) => ({ name: gate.name, verdict: gate.verdict, reason: gate.reason })) },
    type: 'Warning',
    reason: kind === 'stuck' ? 'RotationStuck' : kind === 'approval-needed' ? 'ApprovalNeeded' : 'GateBlocked',
    message: capped(`ring ${ring}: ${what}${action} blocked by ${holding.map((gate) => `${gate.name} (${gate.verdict}): ${gate.reason}`).join('; ')}`),
  };
}

/** A mutating command failed (a write, a partial write, a bug). */
export function failureNotice(ring: string, action: string, message: string): RingNotice {
  return { kind: 'failure', ring, details: { action }, type: 'Warning', reason: 'RotationFailed', message: capped(`ring ${ring}: ${action} failed: ${message}`) };
}

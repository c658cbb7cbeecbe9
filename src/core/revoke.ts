/**
 * Emergency revoke (SPEC §3), pure: no gates, pre-empts any rotation or transition in flight, and
 * plans on top of an interrupted revoke rather than the stale state before it.
 */
import { InternalError, InvalidTransitionError } from '../errors.js';
import { transitionBase, type Stamp } from './machine.js';
import { activateGatesPassed, type DesiredKeySet, type InFlight, type RingState } from './types.js';

/**
 * A revoke pre-empting an interrupted revoke plans on top of what that revoke was doing, never on
 * the stale state before it: its revoked key stays revoked, its replacement stays the replacement.
 */
function revokeBase(state: RingState): RingState {
  const inflight = state.transition;
  if (!inflight || inflight.kind !== 'revoke') return { ...state, transition: null };
  return {
    ...state,
    keys: inflight.desired.keyIds.map((id) => state.keys.find((key) => key.id === id) ?? { id, fingerprint: '', createdAt: inflight.startedAt }),
    activeKeyId: inflight.desired.activeKeyId,
    rotation: null,
    revokedKeyIds: [...new Set([...state.revokedKeyIds, inflight.revokedKeyId])],
    transition: null,
  };
}

interface RevokeChoice {
  readonly desired: DesiredKeySet;
  /** The transition generates a fresh key: `'(fresh)'` until the caller supplies its id. */
  readonly generate: boolean;
  /** The interrupted revoke already removes the key: finish it (its generated key, if any). */
  readonly inherited: string | null;
}

function revokeChoice(state: RingState, keyId: string, freshKeyId: string | null): RevokeChoice {
  const inflight = state.transition;
  const base = revokeBase(state);
  if (inflight?.kind === 'revoke' && !base.keys.some((key) => key.id === keyId)) {
    return { desired: inflight.desired, generate: false, inherited: inflight.generatedKeyId };
  }
  // Promotable: decided on the state as it is, an activate in flight included (the base drops it).
  return { ...revokeTarget(base, keyId, freshKeyId, activateGatesPassed(state)), inherited: null };
}

/** Whether revoking `keyId` needs a freshly generated replacement (it is, or is becoming, active). */
export function revokeNeedsNewKey(state: RingState, keyId: string): boolean {
  return revokeChoice(state, keyId, null).generate;
}

function revokeTarget(state: RingState, keyId: string, freshKeyId: string | null, promotable: boolean): { desired: DesiredKeySet; generate: boolean } {
  const rotation = state.rotation;
  if (state.activeKeyId !== keyId) {
    const remaining = state.keys.map((key) => key.id).filter((id) => id !== keyId);
    if (rotation && rotation.oldKeyId === keyId) return { desired: { keyIds: [rotation.newKeyId], activeKeyId: rotation.newKeyId }, generate: false };
    return { desired: { keyIds: remaining, activeKeyId: state.activeKeyId }, generate: false };
  }
  if (rotation && promotable && rotation.newKeyId !== keyId) {
    return { desired: { keyIds: [rotation.newKeyId], activeKeyId: rotation.newKeyId }, generate: false };
  }
  const replacement = freshKeyId ?? '(new)';
  return { desired: { keyIds: [replacement], activeKeyId: replacement }, generate: true };
}

/**
 * revoke: no gates, pre-empts any rotation or in-flight transition. A non-active key is removed
 * everywhere; an active one is replaced in the same write (the rotation's new key if it already
 * passed its activate gates, else a fresh key). Any rotation involving the key ends.
 */
export function planRevoke(state: RingState, input: Stamp & { readonly keyId: string; readonly freshKeyId: string | null; readonly reason: string }): InFlight {
  const inflight = state.transition;
  const known = new Set([...state.keys.map((key) => key.id), ...(inflight?.desired.keyIds ?? [])]);
  if (!known.has(input.keyId)) {
    const hint = state.revokedKeyIds.includes(input.keyId) ? 'it is already revoked' : `the ring holds ${[...known].join(', ')}`;
    throw new InvalidTransitionError(`key "${input.keyId}" is not in ring "${state.ring}" (${hint})`);
  }
  const base = revokeBase(state);
  const { desired, generate, inherited } = revokeChoice(state, input.keyId, input.freshKeyId);
  if (generate && input.freshKeyId === null) throw new InternalError('revoking an active key needs a fresh key id');
  const transition = {
    ...transitionBase(base, desired, input, { reason: input.reason }),
    kind: 'revoke' as const,
    generatedKeyId: generate ? input.freshKeyId : inherited,
    rotationId: base.rotation?.id ?? null,
    revokedKeyId: input.keyId,
    tolerated: [...new Set([...known, ...(inflight?.tolerated ?? [])])],
    parallel: true,
  };
  // The persisted keys stay those of the last completed transition; the revoked ids are final now.
  return { ...state, revokedKeyIds: base.revokedKeyIds, transition, updatedAt: input.now };
}

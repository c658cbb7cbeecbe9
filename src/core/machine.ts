/**
 * The rotation state machine (SPEC §3), pure: every function takes the state plus observations and
 * returns a new state or a verdict. No I/O, no clock, no randomness — ids and times come in as inputs.
 *
 *   stable ──start──▶ added ──advance──▶ activated ──advance──▶ stable (new key only)
 *            abort ◀── added        activated ──abort──▶ rolling-back ──advance|abort──▶ stable (old key)
 *
 * Revoke lives in `revoke.ts`, the checks against what targets hold in `guards.ts`, when to start
 * in `schedule.ts`.
 */
import { InternalError, InvalidTransitionError } from '../errors.js';
import type { Actor, DesiredKeySet, GateResult, InFlight, RingState, Rotation, StepTransition, Transition, WriteRecord } from './types.js';

export interface Stamp {
  /** ISO time of the decision. */
  readonly now: string;
  /** Unique id for the new transition (idempotency keys derive from it). */
  readonly transitionId: string;
  /** Who decided (recorded on the transition; a start's becomes the rotation's `startedBy`). */
  readonly by?: Actor;
}

export type GateSlot = 'beforeActivate' | 'beforeDrop';
/** A slot of gates before a step; `beforeStart` holds only the built-in window gate. */
export type StepSlot = GateSlot | 'beforeStart';

export function keySetOf(state: RingState): DesiredKeySet {
  return { keyIds: state.keys.map((key) => key.id), activeKeyId: state.activeKeyId };
}

/** What every transition starts with: from the state's key set towards `desired`, nothing written yet. */
export function transitionBase(state: RingState, desired: DesiredKeySet, stamp: Stamp, extra: { readonly gates?: readonly GateResult[]; readonly reason?: string } = {}) {
  return {
    id: stamp.transitionId,
    from: keySetOf(state),
    desired,
    tolerated: [] as readonly string[],
    parallel: false,
    startedAt: stamp.now,
    gates: extra.gates ?? [],
    writes: {},
    ...(extra.reason === undefined ? {} : { reason: extra.reason }),
    ...(stamp.by === undefined ? {} : { by: stamp.by }),
  };
}

function stepTransition(state: RingState, rotation: Rotation, kind: StepTransition['kind'], desired: DesiredKeySet, stamp: Stamp, extra: { readonly gates?: readonly GateResult[]; readonly reason?: string } = {}): StepTransition {
  return { ...transitionBase(state, desired, stamp, extra), kind, generatedKeyId: null, rotationId: rotation.id, revokedKeyId: null };
}

function planned(state: RingState, transition: Transition, now: string): InFlight {
  return { ...state, transition, updatedAt: now };
}

function requireIdle(state: RingState): void {
  if (state.transition) throw new InternalError(`transition ${state.transition.kind} is in flight; resume it first`);
}

export function planStart(state: RingState, input: Stamp & { readonly rotationId: string; readonly newKeyId: string }): InFlight {
  requireIdle(state);
  if (state.rotation) throw new InvalidTransitionError(`ring "${state.ring}" is already rotating (phase ${state.rotation.phase}); use rotate advance or abort`);
  if (state.keys.some((key) => key.id === input.newKeyId) || state.revokedKeyIds.includes(input.newKeyId)) {
    throw new InvalidTransitionError(`key id "${input.newKeyId}" was already used in ring "${state.ring}"`);
  }
  const desired = { keyIds: [...state.keys.map((key) => key.id), input.newKeyId], activeKeyId: state.activeKeyId };
  return planned(state, { ...transitionBase(state, desired, input), kind: 'start', generatedKeyId: input.newKeyId, rotationId: input.rotationId, revokedKeyId: null }, input.now);
}

/** Which gates guard the next step when idle: a stable ring's next step is a start. */
export function nextStepSlot(state: RingState): StepSlot | null {
  if (state.transition) return null;
  return state.rotation ? nextGateSlot(state) : 'beforeStart';
}

/** Which configured gates guard the next step of the rotation, if any. */
export function nextGateSlot(state: RingState): GateSlot | null {
  const rotation = state.rotation;
  if (!rotation) return null;
  return rotation.phase === 'added' ? 'beforeActivate' : 'beforeDrop';
}

export function gatesPass(gates: readonly GateResult[]): boolean {
  return gates.every((gate) => gate.verdict === 'pass' || gate.overridden !== undefined);
}

export type AdvanceDecision = { readonly kind: 'planned'; readonly state: InFlight } | { readonly kind: 'blocked'; readonly gates: readonly GateResult[] };

function dropKey(state: RingState, rotation: Rotation, keep: string): DesiredKeySet {
  const remove = keep === rotation.newKeyId ? state.keys.map((key) => key.id).filter((id) => id !== keep) : [rotation.newKeyId];
  return { keyIds: state.keys.map((key) => key.id).filter((id) => !remove.includes(id)), activeKeyId: keep };
}

/** advance: activate after added; drop after activated; finish an abort that rolled back. Gates decide. */
export function planAdvance(state: RingState, gates: readonly GateResult[], stamp: Stamp): AdvanceDecision {
  requireIdle(state);
  const rotation = state.rotation;
  if (!rotation) throw new InvalidTransitionError(`ring "${state.ring}" is stable; use rotate start`);
  if (!gatesPass(gates)) return { kind: 'blocked', gates };
  const transition =
    rotation.phase === 'added'
      ? stepTransition(state, rotation, 'activate', { keyIds: keySetOf(state).keyIds, activeKeyId: rotation.newKeyId }, stamp, { gates })
      : rotation.phase === 'activated'
        ? stepTransition(state, rotation, 'drop', dropKey(state, rotation, rotation.newKeyId), stamp, { gates })
        : stepTransition(state, rotation, 'abort', dropKey(state, rotation, rotation.oldKeyId), stamp, { gates });
  return { kind: 'planned', state: planned(state, transition, stamp.now) };
}

/**
 * abort: from added, remove the new key (no gates: nothing was ever signed with it); from activated,
 * roll ACTIVE back to the old key (no gates: every verifier still holds it); after a rollback, the
 * new key is removed like a drop, so the drop gates apply.
 */
export function planAbort(state: RingState, gates: readonly GateResult[], stamp: Stamp & { readonly reason?: string }): AdvanceDecision {
  requireIdle(state);
  const rotation = state.rotation;
  if (!rotation) throw new InvalidTransitionError(`ring "${state.ring}" has no rotation to abort`);
  const extra = stamp.reason === undefined ? {} : { reason: stamp.reason };
  if (rotation.phase === 'activated') {
    const transition = stepTransition(state, rotation, 'rollback', { keyIds: keySetOf(state).keyIds, activeKeyId: rotation.oldKeyId }, stamp, extra);
    return { kind: 'planned', state: planned(state, transition, stamp.now) };
  }
  const rollingBack = rotation.phase === 'rolling-back';
  if (rollingBack && !gatesPass(gates)) return { kind: 'blocked', gates };
  const transition = stepTransition(state, rotation, 'abort', dropKey(state, rotation, rotation.oldKeyId), stamp, { ...extra, gates: rollingBack ? gates : [] });
  return { kind: 'planned', state: planned(state, transition, stamp.now) };
}

/** Folds what incremental gates carried into the state (null when there is nothing new to keep). */
export function withGateProgress(state: RingState, carried: readonly (Readonly<Record<string, unknown>> | undefined)[]): RingState | null {
  const updates = carried.filter((carry): carry is Readonly<Record<string, unknown>> => carry !== undefined);
  if (updates.length === 0) return null;
  return { ...state, gateProgress: Object.assign({}, state.gateProgress, ...updates) };
}

/**
 * abort of a transition that has written nothing: drop it, whatever it was (a start whose new key id
 * no target can carry must never leave a ring stuck). Null when some target may have been written —
 * then the transition must be resumed or undone by a write of its own.
 */
export function discardUnwrittenTransition(state: RingState, now: string): RingState | null {
  const transition = state.transition;
  if (!transition || transition.kind === 'revoke') return null;
  // Tolerated keys were written by an earlier attempt (a re-keyed start leaves the abandoned id on
  // verifier targets): dropping the transition would leave them there, unknown to the ring.
  const touched = transition.tolerated.length > 0 || Object.values(transition.writes).some((write) => write.status !== 'pending');
  if (touched) return null;
  return { ...state, transition: null, updatedAt: now };
}

/**
 * The generated key's secret was never persisted (an Ed25519 seed is written to "all" targets, after
 * the verifiers got its public half) and cannot be recovered: continue under a fresh id. Verifiers
 * holding the abandoned public key are rewritten by this same transition.
 */
export function rekeyTransition(state: InFlight, freshKeyId: string, now: string): InFlight {
  const transition = state.transition;
  if (transition.generatedKeyId === null) throw new InternalError('only a transition that generates a key can re-key');
  const abandoned = transition.generatedKeyId;
  const swap = (id: string) => (id === abandoned ? freshKeyId : id);
  const desired = { keyIds: transition.desired.keyIds.map(swap), activeKeyId: swap(transition.desired.activeKeyId) };
  return planned(state, { ...transition, desired, generatedKeyId: freshKeyId, tolerated: [...transition.tolerated, abandoned], writes: {} }, now);
}

export function recordWrite(state: InFlight, record: WriteRecord, now: string): InFlight {
  const transition = state.transition;
  return planned(state, { ...transition, writes: { ...transition.writes, [record.target]: record } }, now);
}

/** All targets verified: fold the transition into the ring state. */
export function completeTransition(state: InFlight, fingerprints: ReadonlyMap<string, string>, now: string): RingState {
  const transition = state.transition;
  const pending = Object.values(transition.writes).filter((write) => write.status !== 'verified' && write.status !== 'unchanged');
  if (pending.length > 0) throw new InternalError(`transition ${transition.kind} has unverified writes: ${pending.map((w) => w.target).join(', ')}`);
  const records = new Map(state.keys.map((key) => [key.id, key]));
  const keys = transition.desired.keyIds.map((id) => {
    const fingerprint = fingerprints.get(id);
    if (!fingerprint) throw new InternalError(`no fingerprint read back for key "${id}"`);
    return { id, fingerprint, createdAt: records.get(id)?.createdAt ?? transition.startedAt };
  });
  const { approval: _spent, lastBlock: _announced, ...rest } = state;
  const base = { ...rest, keys, activeKeyId: transition.desired.activeKeyId, transition: null, updatedAt: now };
  switch (transition.kind) {
    case 'start': {
      const fresh: Rotation = {
        id: transition.rotationId,
        oldKeyId: state.activeKeyId,
        newKeyId: transition.generatedKeyId,
        phase: 'added',
        startedAt: transition.startedAt,
        phaseStartedAt: transition.startedAt,
        phaseVerifiedAt: now,
        ...(transition.by ? { startedBy: transition.by } : {}),
      };
      return { ...base, rotation: fresh };
    }
    case 'activate':
    case 'rollback': {
      const rotation = state.rotation;
      if (!rotation) throw new InternalError(`${transition.kind} of rotation ${transition.rotationId} without a rotation in the state`);
      return { ...base, rotation: { ...rotation, phase: transition.kind === 'activate' ? 'activated' : 'rolling-back', phaseStartedAt: transition.startedAt, phaseVerifiedAt: now } };
    }
    case 'drop':
    case 'abort':
      return { ...base, rotation: null };
    case 'revoke':
      return { ...base, rotation: null, revokedKeyIds: [...new Set([...state.revokedKeyIds, transition.revokedKeyId])] };
  }
}

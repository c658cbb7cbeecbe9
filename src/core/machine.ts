/**
 * The rotation state machine (SPEC §3), pure: every function takes the state plus observations and
 * returns a new state or a verdict. No I/O, no clock, no randomness — ids and times come in as inputs.
 *
 *   stable ──start──▶ added ──advance──▶ activated ──advance──▶ stable (new key only)
 *            abort ◀── added        activated ──abort──▶ added (aborting) ──advance|abort──▶ stable (old key)
 */
import { InternalError, InvalidTransitionError, TargetContentError } from '../errors.js';
import type {
  DesiredKeySet,
  GateOutcome,
  KeyRecord,
  ObservedTarget,
  RingState,
  Rotation,
  Transition,
  TransitionKind,
  WriteRecord,
} from './types.js';
import type { Algorithm } from '../stem/signing-env.js';

export interface Stamp {
  /** ISO time of the decision. */
  readonly now: string;
  /** Unique id for the new transition (idempotency keys derive from it). */
  readonly transitionId: string;
}

export type GateSlot = 'beforeActivate' | 'beforeDrop';

function keySetOf(state: RingState): DesiredKeySet {
  return { keyIds: state.keys.map((key) => key.id), activeKeyId: state.activeKeyId };
}

function describeKeys(observed: ObservedTarget): string {
  const ids = observed.keys.map((key) => key.id).join(',') || '(none)';
  return observed.audience === 'verifiers' ? `keys ${ids}` : `keys ${ids}, active ${observed.activeKeyId ?? '(none)'}`;
}

/** Fingerprints by key id across targets; two targets holding one id with different material conflict. */
export function agreedFingerprints(observations: readonly ObservedTarget[], recorded: readonly KeyRecord[] = []): Map<string, string> {
  const fingerprints = new Map<string, string>();
  const sources = new Map<string, string>();
  for (const record of recorded) {
    fingerprints.set(record.id, record.fingerprint);
    sources.set(record.id, 'the ring state');
  }
  for (const observed of observations) {
    for (const key of observed.keys) {
      const known = fingerprints.get(key.id);
      if (known !== undefined && known !== key.fingerprint) {
        throw new TargetContentError(observed.target, `key "${key.id}" has fingerprint ${key.fingerprint} but ${sources.get(key.id)} has ${known}: two different keys share one id`);
      }
      fingerprints.set(key.id, key.fingerprint);
      sources.set(key.id, `target "${observed.target}"`);
    }
  }
  return fingerprints;
}

/** First sight of a ring: every target must hold the same keys and active key (S10), or we refuse. */
export function bootstrapState(ring: string, algorithm: Algorithm, observations: readonly ObservedTarget[], now: string): RingState {
  const signer = observations.find((observed) => observed.audience === 'all');
  if (!signer || signer.activeKeyId === null) throw new InternalError('a ring has at least one "all" target with an active key');
  const fingerprints = agreedFingerprints(observations);
  const reference = { keyIds: signer.keys.map((key) => key.id), activeKeyId: signer.activeKeyId };
  for (const observed of observations) {
    const ids = observed.keys.map((key) => key.id);
    const sameIds = ids.length === reference.keyIds.length && reference.keyIds.every((id) => ids.includes(id));
    const sameActive = observed.audience === 'verifiers' || observed.activeKeyId === reference.activeKeyId;
    if (!sameIds || !sameActive) {
      throw new TargetContentError(observed.target, `disagrees with target "${signer.target}": ${describeKeys(observed)} vs ${describeKeys(signer)}; make the targets agree before stem-rotor manages the ring`);
    }
  }
  return {
    schema: 1,
    ring,
    algorithm,
    keys: reference.keyIds.map((id) => ({ id, fingerprint: fingerprints.get(id) as string, createdAt: now })),
    activeKeyId: reference.activeKeyId,
    revokedKeyIds: [],
    rotation: null,
    transition: null,
    updatedAt: now,
  };
}

/**
 * S7/S10: every target must hold what the state says, or — mid-transition — something between the
 * transition's start and end. Anything else was changed by someone else: refuse, write nothing.
 */
export function checkTargets(state: RingState, observations: readonly ObservedTarget[]): Map<string, string> {
  const fingerprints = agreedFingerprints(observations, state.keys);
  const transition = state.transition;
  const allowedIds = new Set([...state.keys.map((key) => key.id), ...(transition ? [...transition.desired.keyIds, ...transition.tolerated] : [])]);
  const allowedActive = new Set([state.activeKeyId, ...(transition ? [transition.desired.activeKeyId, transition.from.activeKeyId, ...transition.tolerated] : [])]);
  const expected = keySetOf(state);
  for (const observed of observations) {
    if (observed.algorithm !== state.algorithm) throw new TargetContentError(observed.target, `holds ${observed.algorithm} keys but the ring is ${state.algorithm}`);
    const stranger = observed.keys.find((key) => !allowedIds.has(key.id));
    if (stranger) throw new TargetContentError(observed.target, `holds key "${stranger.id}" that this ring never had; someone else changed it`);
    if (observed.audience === 'all' && (observed.activeKeyId === null || !allowedActive.has(observed.activeKeyId))) {
      throw new TargetContentError(observed.target, `active key is ${observed.activeKeyId ?? '(none)'}, expected ${[...allowedActive].join(' or ')}; someone else changed it`);
    }
    if (!transition) {
      const ids = observed.keys.map((key) => key.id);
      const same = ids.length === expected.keyIds.length && expected.keyIds.every((id) => ids.includes(id));
      if (!same || (observed.audience === 'all' && observed.activeKeyId !== expected.activeKeyId)) {
        throw new TargetContentError(observed.target, `drifted from the ring: ${describeKeys(observed)}, expected keys ${expected.keyIds.join(',')}, active ${expected.activeKeyId}`);
      }
    }
  }
  return fingerprints;
}

function newTransition(
  state: RingState,
  kind: TransitionKind,
  desired: DesiredKeySet,
  stamp: Stamp,
  extra: Partial<Pick<Transition, 'generatedKeyId' | 'tolerated' | 'parallel' | 'gates' | 'rotationId' | 'revokedKeyId' | 'reason'>> = {},
): Transition {
  return {
    id: stamp.transitionId,
    kind,
    from: keySetOf(state),
    desired,
    generatedKeyId: extra.generatedKeyId ?? null,
    tolerated: extra.tolerated ?? [],
    parallel: extra.parallel ?? false,
    startedAt: stamp.now,
    gates: extra.gates ?? [],
    writes: {},
    rotationId: extra.rotationId ?? state.rotation?.id ?? null,
    revokedKeyId: extra.revokedKeyId ?? null,
    ...(extra.reason === undefined ? {} : { reason: extra.reason }),
  };
}

function requireIdle(state: RingState): void {
  if (state.transition) throw new InternalError(`transition ${state.transition.kind} is in flight; resume it first`);
}

export function planStart(state: RingState, input: Stamp & { readonly rotationId: string; readonly newKeyId: string }): RingState {
  requireIdle(state);
  if (state.rotation) throw new InvalidTransitionError(`ring "${state.ring}" is already rotating (phase ${state.rotation.phase}); use rotate advance or abort`);
  if (state.keys.some((key) => key.id === input.newKeyId) || state.revokedKeyIds.includes(input.newKeyId)) {
    throw new InvalidTransitionError(`key id "${input.newKeyId}" was already used in ring "${state.ring}"`);
  }
  const desired = { keyIds: [...state.keys.map((key) => key.id), input.newKeyId], activeKeyId: state.activeKeyId };
  const transition = newTransition(state, 'start', desired, input, { generatedKeyId: input.newKeyId, rotationId: input.rotationId });
  return { ...state, transition, updatedAt: input.now };
}

/** Which gates guard the next step of the ring, if any. */
export function nextGateSlot(state: RingState): GateSlot | null {
  const rotation = state.rotation;
  if (!rotation) return null;
  return rotation.phase === 'added' && !rotation.aborting ? 'beforeActivate' : 'beforeDrop';
}

export function gatesPass(gates: readonly GateOutcome[]): boolean {
  return gates.every((gate) => gate.verdict === 'pass' || gate.overridden !== undefined);
}

export type AdvanceDecision = { readonly kind: 'planned'; readonly state: RingState } | { readonly kind: 'blocked'; readonly gates: readonly GateOutcome[] };

function dropKey(state: RingState, rotation: Rotation, keep: string): DesiredKeySet {
  const remove = keep === rotation.newKeyId ? state.keys.map((key) => key.id).filter((id) => id !== keep) : [rotation.newKeyId];
  return { keyIds: state.keys.map((key) => key.id).filter((id) => !remove.includes(id)), activeKeyId: keep };
}

/** advance: activate after added; drop after activated; finish an abort that rolled back. Gates decide. */
export function planAdvance(state: RingState, gates: readonly GateOutcome[], stamp: Stamp): AdvanceDecision {
  requireIdle(state);
  const rotation = state.rotation;
  if (!rotation) throw new InvalidTransitionError(`ring "${state.ring}" is stable; use rotate start`);
  if (!gatesPass(gates)) return { kind: 'blocked', gates };
  let transition: Transition;
  if (rotation.phase === 'added' && !rotation.aborting) {
    transition = newTransition(state, 'activate', { keyIds: keySetOf(state).keyIds, activeKeyId: rotation.newKeyId }, stamp, { gates });
    return { kind: 'planned', state: { ...state, rotation: { ...rotation, activateGatesPassed: true }, transition, updatedAt: stamp.now } };
  }
  if (rotation.phase === 'activated') {
    transition = newTransition(state, 'drop', dropKey(state, rotation, rotation.newKeyId), stamp, { gates });
  } else {
    transition = newTransition(state, 'abort', dropKey(state, rotation, rotation.oldKeyId), stamp, { gates });
  }
  return { kind: 'planned', state: { ...state, transition, updatedAt: stamp.now } };
}

/**
 * abort: from added, remove the new key (no gates: nothing was ever signed with it); from activated,
 * roll ACTIVE back to the old key (no gates: every verifier still holds it); after a rollback, the
 * new key is removed like a drop, so the drop gates apply.
 */
export function planAbort(state: RingState, gates: readonly GateOutcome[], stamp: Stamp & { readonly reason?: string }): AdvanceDecision {
  requireIdle(state);
  const rotation = state.rotation;
  if (!rotation) throw new InvalidTransitionError(`ring "${state.ring}" has no rotation to abort`);
  const extra = stamp.reason === undefined ? {} : { reason: stamp.reason };
  if (rotation.phase === 'activated') {
    const transition = newTransition(state, 'rollback', { keyIds: keySetOf(state).keyIds, activeKeyId: rotation.oldKeyId }, stamp, extra);
    return { kind: 'planned', state: { ...state, transition, updatedAt: stamp.now } };
  }
  if (rotation.aborting && !gatesPass(gates)) return { kind: 'blocked', gates };
  const transition = newTransition(state, 'abort', dropKey(state, rotation, rotation.oldKeyId), stamp, { ...extra, gates: rotation.aborting ? gates : [] });
  return { kind: 'planned', state: { ...state, transition, updatedAt: stamp.now } };
}

/** Folds what incremental gates carried into the state (null when there is nothing new to keep). */
export function withGateProgress(state: RingState, carried: readonly (Readonly<Record<string, unknown>> | undefined)[]): RingState | null {
  const updates = carried.filter((carry): carry is Readonly<Record<string, unknown>> => carry !== undefined);
  if (updates.length === 0) return null;
  return { ...state, gateProgress: Object.assign({}, state.gateProgress, ...updates) };
}

/**
 * Throws the InvalidTransitionError `action` would meet on this idle state (advance on a stable
 * ring, start while rotating), without planning anything: commands check it before their lease.
 */
export function assertActionApplies(state: RingState, action: 'start' | 'advance' | 'abort'): void {
  const stamp = { now: state.updatedAt, transitionId: 'preflight' };
  if (action === 'start') planStart(state, { ...stamp, rotationId: 'preflight', newKeyId: '\u0000preflight' });
  else if (action === 'advance') planAdvance(state, [], stamp);
  else planAbort(state, [], stamp);
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
  const rotation = transition.kind === 'activate' && state.rotation ? { ...state.rotation, activateGatesPassed: false } : state.rotation;
  return { ...state, rotation, transition: null, updatedAt: now };
}

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
    revokedKeyIds: [...new Set([...state.revokedKeyIds, inflight.revokedKeyId as string])],
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
  return { ...revokeTarget(base, keyId, freshKeyId), inherited: null };
}

/** Whether revoking `keyId` needs a freshly generated replacement (it is, or is becoming, active). */
export function revokeNeedsNewKey(state: RingState, keyId: string): boolean {
  return revokeChoice(state, keyId, null).generate;
}

function revokeTarget(state: RingState, keyId: string, freshKeyId: string | null): { desired: DesiredKeySet; generate: boolean } {
  const rotation = state.rotation;
  if (state.activeKeyId !== keyId) {
    const remaining = state.keys.map((key) => key.id).filter((id) => id !== keyId);
    if (rotation && rotation.oldKeyId === keyId) return { desired: { keyIds: [rotation.newKeyId], activeKeyId: rotation.newKeyId }, generate: false };
    return { desired: { keyIds: remaining, activeKeyId: state.activeKeyId }, generate: false };
  }
  if (rotation && rotation.activateGatesPassed && rotation.newKeyId !== keyId) {
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
export function planRevoke(state: RingState, input: Stamp & { readonly keyId: string; readonly freshKeyId: string | null; readonly reason: string }): RingState {
  const inflight = state.transition;
  const known = new Set([...state.keys.map((key) => key.id), ...(inflight?.desired.keyIds ?? [])]);
  if (!known.has(input.keyId)) {
    const hint = state.revokedKeyIds.includes(input.keyId) ? 'it is already revoked' : `the ring holds ${[...known].join(', ')}`;
    throw new InvalidTransitionError(`key "${input.keyId}" is not in ring "${state.ring}" (${hint})`);
  }
  const base = revokeBase(state);
  const { desired, generate, inherited } = revokeChoice(state, input.keyId, input.freshKeyId);
  if (generate && input.freshKeyId === null) throw new InternalError('revoking an active key needs a fresh key id');
  const transition = newTransition(base, 'revoke', desired, input, {
    generatedKeyId: generate ? input.freshKeyId : inherited,
    tolerated: [...new Set([...known, ...(inflight?.tolerated ?? [])])],
    parallel: true,
    revokedKeyId: input.keyId,
    reason: input.reason,
  });
  // The persisted keys stay those of the last completed transition; the revoked ids are final now.
  return { ...state, revokedKeyIds: base.revokedKeyIds, transition, updatedAt: input.now };
}

/**
 * The generated key's secret was never persisted (an Ed25519 seed is written to "all" targets, after
 * the verifiers got its public half) and cannot be recovered: continue under a fresh id. Verifiers
 * holding the abandoned public key are rewritten by this same transition.
 */
export function rekeyTransition(state: RingState, freshKeyId: string, now: string): RingState {
  const transition = state.transition;
  if (!transition || transition.generatedKeyId === null) throw new InternalError('only a transition that generates a key can re-key');
  const abandoned = transition.generatedKeyId;
  const swap = (id: string) => (id === abandoned ? freshKeyId : id);
  const desired = { keyIds: transition.desired.keyIds.map(swap), activeKeyId: swap(transition.desired.activeKeyId) };
  return {
    ...state,
    transition: { ...transition, desired, generatedKeyId: freshKeyId, tolerated: [...transition.tolerated, abandoned], writes: {} },
    updatedAt: now,
  };
}

export function recordWrite(state: RingState, record: WriteRecord, now: string): RingState {
  const transition = state.transition;
  if (!transition) throw new InternalError('no transition to record a write in');
  return { ...state, transition: { ...transition, writes: { ...transition.writes, [record.target]: record } }, updatedAt: now };
}

/** All targets verified: fold the transition into the ring state. */
export function completeTransition(state: RingState, fingerprints: ReadonlyMap<string, string>, now: string): RingState {
  const transition = state.transition;
  if (!transition) throw new InternalError('no transition to complete');
  const pending = Object.values(transition.writes).filter((write) => write.status !== 'verified' && write.status !== 'unchanged');
  if (pending.length > 0) throw new InternalError(`transition ${transition.kind} has unverified writes: ${pending.map((w) => w.target).join(', ')}`);
  const records = new Map(state.keys.map((key) => [key.id, key]));
  const keys = transition.desired.keyIds.map((id) => {
    const fingerprint = fingerprints.get(id);
    if (!fingerprint) throw new InternalError(`no fingerprint read back for key "${id}"`);
    return { id, fingerprint, createdAt: records.get(id)?.createdAt ?? transition.startedAt };
  });
  const base = { ...state, keys, activeKeyId: transition.desired.activeKeyId, transition: null, updatedAt: now };
  const rotation = state.rotation;
  switch (transition.kind) {
    case 'start': {
      const newKeyId = transition.generatedKeyId as string;
      const fresh: Rotation = {
        id: transition.rotationId as string,
        oldKeyId: state.activeKeyId,
        newKeyId,
        phase: 'added',
        aborting: false,
        activateGatesPassed: false,
        startedAt: transition.startedAt,
        phaseStartedAt: transition.startedAt,
        phaseVerifiedAt: now,
      };
      return { ...base, rotation: fresh };
    }
    case 'activate':
      return { ...base, rotation: { ...(rotation as Rotation), phase: 'activated', phaseStartedAt: transition.startedAt, phaseVerifiedAt: now } };
    case 'rollback':
      return { ...base, rotation: { ...(rotation as Rotation), phase: 'added', aborting: true, phaseStartedAt: transition.startedAt, phaseVerifiedAt: now } };
    case 'drop':
    case 'abort':
      return { ...base, rotation: null };
    case 'revoke':
      return { ...base, rotation: null, revokedKeyIds: [...new Set([...state.revokedKeyIds, transition.revokedKeyId as string])] };
  }
}

/**
 * The write guard, checked against fresh reads right before every write:
 * S1 — ACTIVE=K only once every target (verifiers included) holds K, and only through gates or revoke;
 * S2 — no key leaves a target while any target still has it active (revoke excepted);
 * S3 — the written set is non-empty and contains its active key.
 */
export function assertWriteSafe(transition: Transition, target: ObservedTarget, observations: readonly ObservedTarget[]): void {
  const { desired } = transition;
  if (desired.keyIds.length === 0 || !desired.keyIds.includes(desired.activeKeyId)) {
    throw new InternalError(`S3: ${transition.kind} would leave target "${target.target}" without its active key`);
  }
  if (transition.kind === 'revoke') return;
  if (target.audience === 'all' && target.activeKeyId !== desired.activeKeyId) {
    const missing = observations.filter((observed) => !observed.keys.some((key) => key.id === desired.activeKeyId));
    if (missing.length > 0) {
      throw new InternalError(`S1: refusing to activate "${desired.activeKeyId}" on "${target.target}" while ${missing.map((o) => o.target).join(', ')} cannot verify it`);
    }
    if (transition.kind === 'activate' && !gatesPass(transition.gates)) throw new InternalError('S1: activate planned without passing gates');
  }
  const removed = target.keys.filter((key) => !desired.keyIds.includes(key.id)).map((key) => key.id);
  const stillActive = observations.filter((observed) => observed.target !== target.target && observed.activeKeyId !== null && removed.includes(observed.activeKeyId));
  if (stillActive.length > 0) {
    throw new InternalError(`S2: refusing to remove ${removed.join(', ')} from "${target.target}" while ${stillActive.map((o) => `${o.target} has ${o.activeKeyId}`).join(', ')} active`);
  }
}

/**
 * A key's age counts from the earlier of when stem-rotor first saw it and the date in a
 * scheme-generated id (`<prefix><yyyymmdd>-<hex>`), so adopting an old ring does not reset ages.
 */
export function keyBirth(record: KeyRecord, prefix: string): Date {
  const seen = new Date(record.createdAt);
  if (!record.id.startsWith(prefix)) return seen;
  const match = /^(\d{4})(\d{2})(\d{2})-[0-9a-f]{4}$/.exec(record.id.slice(prefix.length));
  if (!match) return seen;
  const dated = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return Number.isNaN(dated.getTime()) || dated > seen ? seen : dated;
}

/** `run`: should the scheduled job start a rotation of this stable ring now? */
export function rotationDue(state: RingState, prefix: string, maxAgeMs: number, now: Date): boolean {
  if (state.rotation || state.transition) return false;
  const active = state.keys.find((key) => key.id === state.activeKeyId);
  return active !== undefined && now.getTime() - keyBirth(active, prefix).getTime() >= maxAgeMs;
}

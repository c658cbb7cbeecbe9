/**
 * What the core checks against what targets really hold (S7, S10, S1–S3), pure: agreement across
 * targets, the ring's first state built from them, drift from the recorded state, and the write guard
 * checked right before every write.
 */
import { InternalError, TargetContentError } from '../errors.js';
import type { Algorithm } from '../stem/signing-env.js';
import { gatesPass, keySetOf } from './machine.js';
import { holdsExactly, type KeyRecord, type ObservedTarget, type RingState, type Transition } from './types.js';

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
    const sameIds = holdsExactly(observed, reference.keyIds);
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
  const way = `; if the targets are right, \`stem-rotor reconcile ${state.ring}\` shows the difference and accepts them`;
  for (const observed of observations) {
    if (observed.algorithm !== state.algorithm) throw new TargetContentError(observed.target, `holds ${observed.algorithm} keys but the ring is ${state.algorithm}`);
    const stranger = observed.keys.find((key) => !allowedIds.has(key.id));
    if (stranger) throw new TargetContentError(observed.target, `holds key "${stranger.id}" that this ring never had; someone else changed it${way}`);
    if (observed.audience === 'all' && (observed.activeKeyId === null || !allowedActive.has(observed.activeKeyId))) {
      throw new TargetContentError(observed.target, `active key is ${observed.activeKeyId ?? '(none)'}, expected ${[...allowedActive].join(' or ')}; someone else changed it${way}`);
    }
    if (!transition) {
      const same = holdsExactly(observed, expected.keyIds);
      if (!same || (observed.audience === 'all' && observed.activeKeyId !== expected.activeKeyId)) {
        throw new TargetContentError(observed.target, `drifted from the ring: ${describeKeys(observed)}, expected keys ${expected.keyIds.join(',')}, active ${expected.activeKeyId}${way}`);
      }
    }
  }
  return fingerprints;
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

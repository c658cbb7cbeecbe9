/**
 * Between a target's Stem variables and the core's view of it: parse and validate what a target
 * holds (S7), and render the variables a target must hold for a ring-level key set.
 */
import { InternalError, TargetContentError } from '../errors.js';
import { keyFingerprint, type KeyMaterial } from '../stem/keys.js';
import { lintSigningEnv } from '../stem/lint.js';
import { STEM_ENV, StemConfigError, formatKeyList, loadStemSigningConfig, type Algorithm, type SigningEnv, type StemEnvName } from '../stem/signing-env.js';
import { holdsExactly, type Audience, type DesiredKeySet, type ObservedTarget } from './types.js';

/** The variables each audience is given (SPEC §2). */
export function audienceFields(algorithm: Algorithm, audience: Audience): StemEnvName[] {
  if (algorithm === 'hmac-sha256') return [STEM_ENV.algorithm, STEM_ENV.keys, STEM_ENV.activeKey];
  if (audience === 'verifiers') return [STEM_ENV.algorithm, STEM_ENV.publicKeys];
  return [STEM_ENV.algorithm, STEM_ENV.publicKeys, STEM_ENV.privateKeys, STEM_ENV.activeKey];
}

/** Every Stem variable a target is read for: its audience's fields plus the ones that must be absent. */
export function observedFields(): StemEnvName[] {
  return Object.values(STEM_ENV);
}

export interface Observation {
  readonly observed: ObservedTarget;
  readonly material: ReadonlyMap<string, KeyMaterial>;
}

/** Parses one target's variables; refuses (TargetContentError) anything Stem refuses or lints as an error. */
export function observeTarget(target: string, audience: Audience, ringAlgorithm: Algorithm, env: SigningEnv): Observation {
  let config;
  try {
    config = loadStemSigningConfig(env);
  } catch (error) {
    if (error instanceof StemConfigError) throw new TargetContentError(target, `Stem would refuse this config: ${error.message}`);
    throw error;
  }
  const errors = lintSigningEnv(env).filter((finding) => finding.severity === 'error');
  if (errors.length > 0) {
    throw new TargetContentError(target, errors.map((finding) => `${finding.code} ${finding.variable}: ${finding.message}`).join('; '));
  }
  if (config.algorithm !== ringAlgorithm) {
    throw new TargetContentError(target, `holds ${config.algorithm} keys but the ring is ${ringAlgorithm}`);
  }
  if (!config.enabled) {
    throw new TargetContentError(target, 'holds no signing keys (Stem signing is disabled there); seed it first, e.g. with `stem-rotor keys generate`');
  }

  const material = new Map<string, KeyMaterial>();
  const keys: ObservedTarget['keys'][number][] = [];
  if (ringAlgorithm === 'hmac-sha256') {
    for (const [id, secret] of config.verificationKeys) {
      const key = { id, secret };
      material.set(id, key);
      keys.push({ id, fingerprint: keyFingerprint(ringAlgorithm, key), hasSecret: true });
    }
    return { observed: { target, audience, algorithm: ringAlgorithm, keys, activeKeyId: config.activeKeyId }, material };
  }

  if (audience === 'verifiers' && config.signingKeys.size > 0) {
    throw new TargetContentError(target, 'audience is "verifiers" but it holds STEM_SIGNING_PRIVATE_KEYS; make it audience "all" or remove them');
  }
  if (audience === 'all') {
    const unpaired = [...config.verificationKeys.keys()].filter((id) => !config.signingKeys.has(id));
    unpaired.push(...[...config.signingKeys.keys()].filter((id) => !config.verificationKeys.has(id)));
    if (unpaired.length > 0) {
      throw new TargetContentError(target, `keys ${unpaired.map((id) => `"${id}"`).join(', ')} lack a public or private half; an "all" target holds both`);
    }
  }
  for (const [id, publicKey] of config.verificationKeys) {
    const secret = config.signingKeys.get(id);
    const key: KeyMaterial = secret ? { id, secret, publicKey } : { id, publicKey };
    material.set(id, key);
    keys.push({ id, fingerprint: keyFingerprint(ringAlgorithm, key), hasSecret: secret !== undefined });
  }
  const activeKeyId = audience === 'verifiers' ? null : config.activeKeyId;
  return { observed: { target, audience, algorithm: ringAlgorithm, keys, activeKeyId }, material };
}

/** The variables a target of this audience must hold for `desired`. Throws if material is missing. */
export function renderKeySet(
  algorithm: Algorithm,
  audience: Audience,
  desired: DesiredKeySet,
  material: ReadonlyMap<string, KeyMaterial>,
): Partial<Record<StemEnvName, string>> {
  const keys = desired.keyIds.map((id) => {
    const key = material.get(id);
    if (!key) throw new InternalError(`no material for key "${id}"`);
    return key;
  });
  const pick = (field: 'secret' | 'publicKey') =>
    formatKeyList(
      keys.map((key) => {
        const bytes = key[field];
        if (!bytes) throw new InternalError(`key "${key.id}" has no ${field === 'secret' ? 'secret' : 'public key'}`);
        return { id: key.id, material: bytes };
      }),
    );
  if (algorithm === 'hmac-sha256') {
    return { [STEM_ENV.algorithm]: algorithm, [STEM_ENV.keys]: pick('secret'), [STEM_ENV.activeKey]: desired.activeKeyId };
  }
  if (audience === 'verifiers') return { [STEM_ENV.algorithm]: algorithm, [STEM_ENV.publicKeys]: pick('publicKey') };
  return {
    [STEM_ENV.algorithm]: algorithm,
    [STEM_ENV.publicKeys]: pick('publicKey'),
    [STEM_ENV.privateKeys]: pick('secret'),
    [STEM_ENV.activeKey]: desired.activeKeyId,
  };
}

/** Which of the audience's variables a write towards `desired` changes (for plans; no material needed). */
export function changedVariables(algorithm: Algorithm, observed: ObservedTarget, desired: DesiredKeySet, rawAlgorithm: string | undefined): StemEnvName[] {
  const sameIds = holdsExactly(observed, desired.keyIds);
  return audienceFields(algorithm, observed.audience).filter((variable) => {
    if (variable === STEM_ENV.algorithm) return rawAlgorithm?.trim() !== algorithm;
    if (variable === STEM_ENV.activeKey) return observed.activeKeyId !== desired.activeKeyId;
    return !sameIds;
  });
}

/** True when the target already holds exactly `desired` (same ids, fingerprints, active key). */
export function holdsKeySet(observed: ObservedTarget, desired: DesiredKeySet, fingerprints: ReadonlyMap<string, string>): boolean {
  if (!holdsExactly(observed, desired.keyIds)) return false;
  if (!observed.keys.every((key) => fingerprints.get(key.id) === key.fingerprint)) return false;
  if (observed.audience === 'all' && !observed.keys.every((key) => key.hasSecret)) return false;
  return observed.audience === 'verifiers' || observed.activeKeyId === desired.activeKeyId;
}

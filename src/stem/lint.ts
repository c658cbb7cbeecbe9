/**
 * Findings on a Stem signing config. Errors: Stem refuses to start, or accepts silently something
 * that breaks signing (disabled by a mismatch, duplicates, unusable keys). Warnings: hygiene.
 * Codes are stable; messages name variables and key ids, never material.
 */
import { ed25519PublicFromSeed } from './keys.js';
import { keyIdProblem } from './keys.js';
import {
  STEM_ENV,
  StemConfigError,
  dartTrim,
  loadStemSigningConfig,
  tokenizeKeyList,
  type KeyListToken,
  type SigningEnv,
  type StemEnvName,
} from './signing-env.js';

export type Severity = 'error' | 'warning';
export interface LintFinding {
  readonly code: string;
  readonly severity: Severity;
  readonly variable: StemEnvName;
  readonly message: string;
}

export const LINT_CODES = {
  stemRefuses: 'SR001',
  signingDisabledMismatch: 'SR002',
  duplicateKeyId: 'SR003',
  emptyKeyMaterial: 'SR004',
  ed25519WrongLength: 'SR005',
  ed25519LibsodiumPrivate: 'SR006',
  ed25519SeedMismatch: 'SR007',
  invalidKeyId: 'SR008',
  ed25519ActiveWithoutPublic: 'SR009',
  readerSeesOtherValue: 'SR010',
  hmacShortSecret: 'SR101',
  signingDisabled: 'SR102',
  ignoredVariable: 'SR103',
  nonCanonicalAlgorithm: 'SR104',
  ed25519VerifyOnly: 'SR105',
  ed25519PrivateWithoutPublic: 'SR106',
} as const;

type Report = (code: string, severity: Severity, variable: StemEnvName, message: string) => void;

function isSet(value: string | undefined): boolean {
  return dartTrim(value ?? '') !== '';
}

function validTokens(tokens: readonly KeyListToken[]): { id: string; material: Buffer; position: number }[] {
  return tokens.flatMap((token) => (token.problem || token.id === undefined || !token.material ? [] : [{ id: token.id, material: token.material, position: token.position }]));
}

function lintKeyList(variable: StemEnvName, tokens: readonly KeyListToken[], report: Report): void {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.id === undefined) continue;
    if (seen.has(token.id)) {
      report(LINT_CODES.duplicateKeyId, 'error', variable, `key id "${token.id}" appears more than once; Stem silently keeps the last one`);
    }
    seen.add(token.id);
    const idProblem = keyIdProblem(token.id);
    if (idProblem) report(LINT_CODES.invalidKeyId, 'error', variable, `key id "${token.id}" ${idProblem}`);
    if (token.material && token.material.length === 0) {
      report(LINT_CODES.emptyKeyMaterial, 'error', variable, `key "${token.id}" has empty key material; Stem accepts it as a zero-length key`);
    }
  }
}

function lintEd25519(env: SigningEnv, report: Report): void {
  const publicKeys = validTokens(tokenizeKeyList(env[STEM_ENV.publicKeys], STEM_ENV.publicKeys));
  const privateKeys = validTokens(tokenizeKeyList(env[STEM_ENV.privateKeys], STEM_ENV.privateKeys));
  const publicById = new Map(publicKeys.map((entry) => [entry.id, entry.material]));
  for (const entry of publicKeys) {
    if (entry.material.length !== 32 && entry.material.length !== 0) {
      report(LINT_CODES.ed25519WrongLength, 'error', STEM_ENV.publicKeys, `public key "${entry.id}" is ${entry.material.length} bytes; Ed25519 public keys are 32 bytes`);
    }
  }
  for (const entry of privateKeys) {
    if (entry.material.length === 64) {
      report(LINT_CODES.ed25519LibsodiumPrivate, 'error', STEM_ENV.privateKeys, `private key "${entry.id}" is 64 bytes (libsodium seed||public); Stem needs the 32-byte seed, and would sign with a different key`);
      continue;
    }
    if (entry.material.length !== 32) {
      if (entry.material.length !== 0) {
        report(LINT_CODES.ed25519WrongLength, 'error', STEM_ENV.privateKeys, `private key "${entry.id}" is ${entry.material.length} bytes; Ed25519 seeds are 32 bytes`);
      }
      continue;
    }
    const published = publicById.get(entry.id);
    if (!published) {
      report(LINT_CODES.ed25519PrivateWithoutPublic, 'warning', STEM_ENV.privateKeys, `private key "${entry.id}" has no public key in STEM_SIGNING_PUBLIC_KEYS`);
    } else if (published.length === 32 && !ed25519PublicFromSeed(entry.material).equals(published)) {
      report(LINT_CODES.ed25519SeedMismatch, 'error', STEM_ENV.publicKeys, `public key "${entry.id}" does not match its private seed; signatures would fail as "signature mismatch"`);
    }
  }
  const active = dartTrim(env[STEM_ENV.activeKey] ?? '');
  if (publicKeys.length > 0 && active !== '' && !publicById.has(active)) {
    report(LINT_CODES.ed25519ActiveWithoutPublic, 'error', STEM_ENV.activeKey, `active key "${active}" has no public key; Stem's sign() throws "Missing public key"`);
  }
  if (publicKeys.length > 0 && privateKeys.length === 0) {
    report(LINT_CODES.ed25519VerifyOnly, 'warning', STEM_ENV.privateKeys, 'verify-only config: a worker with it cannot re-sign retries (Stem throws StateError after acking)');
  }
}

export function lintSigningEnv(env: SigningEnv): LintFinding[] {
  const findings: LintFinding[] = [];
  const report: Report = (code, severity, variable, message) => findings.push({ code, severity, variable, message });

  try {
    loadStemSigningConfig(env);
  } catch (error) {
    if (!(error instanceof StemConfigError)) throw error;
    report(LINT_CODES.stemRefuses, 'error', error.variable, `Stem refuses to start: ${error.message}`);
  }

  const rawAlgorithm = dartTrim(env[STEM_ENV.algorithm] ?? '');
  const algorithm = rawAlgorithm.toLowerCase();
  if (algorithm !== '' && algorithm !== 'hmac-sha256' && algorithm !== 'ed25519') return findings;
  if (rawAlgorithm !== algorithm) {
    report(LINT_CODES.nonCanonicalAlgorithm, 'warning', STEM_ENV.algorithm, `algorithm "${rawAlgorithm}" is accepted case-insensitively; write "${algorithm}"`);
  }

  for (const variable of [STEM_ENV.keys, STEM_ENV.publicKeys, STEM_ENV.privateKeys] as const) {
    lintKeyList(variable, tokenizeKeyList(env[variable], variable), report);
  }

  const hasHmac = isSet(env[STEM_ENV.keys]);
  const hasEd = isSet(env[STEM_ENV.publicKeys]) || isSet(env[STEM_ENV.privateKeys]);
  if (algorithm === 'ed25519') {
    if (!isSet(env[STEM_ENV.publicKeys]) && (hasHmac || isSet(env[STEM_ENV.privateKeys]))) {
      report(LINT_CODES.signingDisabledMismatch, 'error', STEM_ENV.publicKeys, 'algorithm is ed25519 but STEM_SIGNING_PUBLIC_KEYS is empty: Stem silently disables signing and verification');
    } else if (hasHmac) {
      report(LINT_CODES.ignoredVariable, 'warning', STEM_ENV.keys, 'STEM_SIGNING_KEYS is ignored when the algorithm is ed25519');
    }
    lintEd25519(env, report);
  } else {
    if (!hasHmac && hasEd) {
      report(LINT_CODES.signingDisabledMismatch, 'error', STEM_ENV.algorithm, 'Ed25519 keys are set but the algorithm is hmac-sha256 (the default): Stem silently disables signing and verification');
    } else if (hasEd) {
      report(LINT_CODES.ignoredVariable, 'warning', STEM_ENV.publicKeys, 'STEM_SIGNING_PUBLIC_KEYS/PRIVATE_KEYS are ignored when the algorithm is hmac-sha256');
    }
    for (const entry of validTokens(tokenizeKeyList(env[STEM_ENV.keys], STEM_ENV.keys))) {
      if (entry.material.length > 0 && entry.material.length < 32) {
        report(LINT_CODES.hmacShortSecret, 'warning', STEM_ENV.keys, `HMAC secret "${entry.id}" is ${entry.material.length} bytes; use at least 32 random bytes`);
      }
    }
  }
  if (!hasHmac && !hasEd) {
    report(LINT_CODES.signingDisabled, 'warning', STEM_ENV.keys, 'no signing keys: Stem neither signs nor verifies, and accepts unsigned envelopes');
  }
  return findings;
}

/**
 * Stem's `SigningConfig.fromEnvironment` (stem-interop §1.2), reproduced rule for rule so that
 * stem-rotor accepts exactly what Stem accepts. Errors are Stem's, minus anything that could echo
 * key material: Stem prints the whole malformed entry; we print the variable and entry number.
 */
import { Base64FormatError, decodeDartBase64, encodeBase64 } from './base64.js';

export const STEM_ENV = {
  algorithm: 'STEM_SIGNING_ALGORITHM',
  keys: 'STEM_SIGNING_KEYS',
  publicKeys: 'STEM_SIGNING_PUBLIC_KEYS',
  privateKeys: 'STEM_SIGNING_PRIVATE_KEYS',
  activeKey: 'STEM_SIGNING_ACTIVE_KEY',
} as const;
export type StemEnvName = (typeof STEM_ENV)[keyof typeof STEM_ENV];
export const STEM_ENV_NAMES: readonly StemEnvName[] = Object.values(STEM_ENV);
export type SigningEnv = Partial<Record<StemEnvName, string | undefined>>;

/**
 * Dart's `String.trim` (VM `_isTwoByteWhitespace`): JS `trim` plus U+0085 (NEL), which Dart also
 * strips from every STEM_* value, key id and base64 part.
 */
const DART_WHITESPACE = '[\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]';
const DART_TRIM = new RegExp(`^${DART_WHITESPACE}+|${DART_WHITESPACE}+$`, 'g');

export function dartTrim(value: string): string {
  return value.replace(DART_TRIM, '');
}

export const ALGORITHMS = ['hmac-sha256', 'ed25519'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

type KeyListVariable = typeof STEM_ENV.keys | typeof STEM_ENV.publicKeys | typeof STEM_ENV.privateKeys;
const DESCRIPTION: Record<KeyListVariable, string> = {
  STEM_SIGNING_KEYS: 'signing key',
  STEM_SIGNING_PUBLIC_KEYS: 'public key',
  STEM_SIGNING_PRIVATE_KEYS: 'private key',
};

/** Stem would throw this (FormatException or StateError) and the process would not start. */
export class StemConfigError extends Error {
  override name = 'StemConfigError' as const;
  readonly variable: StemEnvName;
  readonly stemException: 'FormatException' | 'StateError';
  constructor(variable: StemEnvName, message: string, stemException: 'FormatException' | 'StateError') {
    super(message);
    this.variable = variable;
    this.stemException = stemException;
  }
}

export interface KeyEntry {
  readonly id: string;
  readonly material: Buffer;
  /** 1-based position among the non-empty entries, for messages. */
  readonly position: number;
}

export interface KeyListToken {
  readonly position: number;
  readonly id?: string;
  readonly material?: Buffer;
  readonly problem?: StemConfigError;
}

/** Splits a key list like Stem's `_parseKeyList`, keeping every entry (and its problem) in order. */
export function tokenizeKeyList(value: string | undefined, variable: KeyListVariable): KeyListToken[] {
  const description = DESCRIPTION[variable];
  const tokens: KeyListToken[] = [];
  let position = 0;
  for (const rawEntry of dartTrim(value ?? '').split(',')) {
    const entry = dartTrim(rawEntry);
    if (entry === '') continue;
    position += 1;
    const parts = entry.split(':');
    if (parts.length !== 2) {
      const problem = new StemConfigError(
        variable,
        `${variable}: invalid ${description} entry #${position}. Expected format keyId:base64Value`,
        'FormatException',
      );
      tokens.push({ position, problem });
      continue;
    }
    const id = dartTrim(parts[0] ?? '');
    const encoded = dartTrim(parts[1] ?? '');
    if (id === '') {
      const problem = new StemConfigError(variable, `${variable}: ${description} id cannot be empty (entry #${position})`, 'FormatException');
      tokens.push({ position, problem });
      continue;
    }
    try {
      tokens.push({ position, id, material: decodeDartBase64(encoded) });
    } catch (error) {
      if (!(error instanceof Base64FormatError)) throw error;
      const problem = new StemConfigError(variable, `${variable}: ${description} "${id}" must be base64 encoded (${error.message})`, 'FormatException');
      tokens.push({ position, id, problem });
    }
  }
  return tokens;
}

export function parseKeyList(value: string | undefined, variable: KeyListVariable): KeyEntry[] {
  return tokenizeKeyList(value, variable).map((token) => {
    if (token.problem) throw token.problem;
    return { id: token.id as string, material: token.material as Buffer, position: token.position };
  });
}

export function parseAlgorithm(raw: string | undefined): Algorithm {
  const value = dartTrim(raw ?? '');
  if (value === '') return 'hmac-sha256';
  const lower = value.toLowerCase();
  if (lower === 'hmac-sha256' || lower === 'ed25519') return lower;
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  throw new StemConfigError(STEM_ENV.algorithm, `Unsupported signing algorithm "${shown}"`, 'FormatException');
}

/** Later duplicates overwrite earlier ones, as Stem's map assignment does; first position is kept. */
function toKeyMap(entries: readonly KeyEntry[]): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  for (const entry of entries) map.set(entry.id, entry.material);
  return map;
}

export interface StemSigningConfig {
  readonly algorithm: Algorithm;
  readonly activeKeyId: string | null;
  /** Stem's `isEnabled`: false means the process neither signs nor verifies. */
  readonly enabled: boolean;
  readonly canSign: boolean;
  /** HMAC secrets (hmac-sha256 mode) or Ed25519 public keys (ed25519 mode), Stem's effective map. */
  readonly verificationKeys: ReadonlyMap<string, Buffer>;
  /** HMAC secrets (same as verificationKeys) or Ed25519 seeds. */
  readonly signingKeys: ReadonlyMap<string, Buffer>;
}

/** Exactly `SigningConfig.fromEnvironment`: throws StemConfigError where Stem throws. */
export function loadStemSigningConfig(env: SigningEnv): StemSigningConfig {
  const algorithm = parseAlgorithm(env[STEM_ENV.algorithm]);
  const activeRaw = dartTrim(env[STEM_ENV.activeKey] ?? '');
  const activeKeyId = activeRaw === '' ? null : activeRaw;
  const disabled: StemSigningConfig = { algorithm, activeKeyId, enabled: false, canSign: false, verificationKeys: new Map(), signingKeys: new Map() };

  if (algorithm === 'hmac-sha256') {
    const keys = toKeyMap(parseKeyList(env[STEM_ENV.keys], STEM_ENV.keys));
    if (keys.size === 0) return disabled;
    if (activeKeyId === null) {
      throw new StemConfigError(STEM_ENV.activeKey, 'Missing STEM_SIGNING_ACTIVE_KEY; required when signing keys are provided.', 'StateError');
    }
    if (!keys.has(activeKeyId)) {
      throw new StemConfigError(STEM_ENV.activeKey, `Active signing key "${activeKeyId}" not present in STEM_SIGNING_KEYS.`, 'StateError');
    }
    return { algorithm, activeKeyId, enabled: true, canSign: true, verificationKeys: keys, signingKeys: keys };
  }

  // Only a blank PUBLIC_KEYS returns early: a value of empty entries (",") still parses PRIVATE_KEYS
  // and checks the active key, so Stem refuses to start on a bad private key list even then.
  if (dartTrim(env[STEM_ENV.publicKeys] ?? '') === '') return disabled;
  const publicKeys = toKeyMap(parseKeyList(env[STEM_ENV.publicKeys], STEM_ENV.publicKeys));
  const privateKeys = toKeyMap(parseKeyList(env[STEM_ENV.privateKeys], STEM_ENV.privateKeys));
  if (privateKeys.size > 0 && activeKeyId !== null && !privateKeys.has(activeKeyId)) {
    throw new StemConfigError(STEM_ENV.activeKey, `Active signing key "${activeKeyId}" missing from STEM_SIGNING_PRIVATE_KEYS.`, 'StateError');
  }
  if (publicKeys.size === 0) return disabled;
  const canSign = activeKeyId !== null && privateKeys.has(activeKeyId);
  return { algorithm, activeKeyId, enabled: true, canSign, verificationKeys: publicKeys, signingKeys: privateKeys };
}

export function formatKeyList(entries: readonly { id: string; material: Uint8Array }[]): string {
  return entries.map((entry) => `${entry.id}:${encodeBase64(entry.material)}`).join(',');
}

/** Key material helpers: fingerprints, Ed25519 seed handling, generation of keys and key ids. */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { Algorithm } from './signing-env.js';

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** First 16 hex digits of SHA-256 over the raw key bytes: safe to log, store and print. */
export function fingerprint(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

export function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function ed25519PublicKey(publicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
}

/** RFC 8032 public key of a 32-byte seed. */
export function ed25519PublicFromSeed(seed: Uint8Array): Buffer {
  const der = createPublicKey(ed25519PrivateKey(seed)).export({ format: 'der', type: 'spki' });
  return der.subarray(SPKI_ED25519_PREFIX.length);
}

/**
 * One key of a ring in memory. `secret` is the HMAC secret or the Ed25519 seed; `publicKey` exists
 * for Ed25519 only. A verify-only holder knows the public key but not the seed.
 */
export interface KeyMaterial {
  readonly id: string;
  readonly secret?: Buffer;
  readonly publicKey?: Buffer;
}

/** The identity of a key: HMAC over its secret, Ed25519 over its public key (what verifiers hold). */
export function keyFingerprint(algorithm: Algorithm, key: KeyMaterial): string {
  const bytes = algorithm === 'ed25519' ? key.publicKey : key.secret;
  if (!bytes) throw new Error(`key "${key.id}" has no ${algorithm === 'ed25519' ? 'public key' : 'secret'}`);
  return fingerprint(bytes);
}

export type RandomBytes = (size: number) => Buffer;

export function generateKey(algorithm: Algorithm, id: string, randomBytes: RandomBytes): KeyMaterial {
  const secret = randomBytes(32);
  if (algorithm === 'hmac-sha256') return { id, secret };
  return { id, secret, publicKey: ed25519PublicFromSeed(secret) };
}

/** Ids go into `keyId:base64` lists: Stem splits on `,` and `:` and trims, so those are forbidden. */
export function keyIdProblem(id: string): string | null {
  if (id === '') return 'is empty';
  if (/[:,]/.test(id)) return 'contains ":" or ","';
  if (/\s/.test(id)) return 'contains whitespace';
  return null;
}

/** Default scheme `<prefix><yyyymmdd>-<4 hex>`, from the injected clock and randomness. */
export function generateKeyId(prefix: string, now: Date, randomBytes: RandomBytes): string {
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `${prefix}${date}-${randomBytes(2).toString('hex')}`;
}

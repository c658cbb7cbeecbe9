/** Sign and verify envelopes exactly as Stem's PayloadSigner does (stem-interop §2.3–2.4). */
import { createHmac, sign as edSign, verify as edVerify } from 'node:crypto';
import { Base64FormatError, decodeDartBase64 } from './base64.js';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER, canonicalEnvelope } from './canonical.js';
import type { Envelope } from './envelope.js';
import { ed25519PrivateKey, ed25519PublicKey, type KeyMaterial } from './keys.js';
import type { Algorithm, StemSigningConfig } from './signing-env.js';

/** Does `signature` over `message` verify under this key (an HMAC secret, or a 32-byte Ed25519 public key)? */
function verifiesUnder(algorithm: Algorithm, message: Buffer, signature: Buffer, key: Uint8Array): boolean {
  if (algorithm === 'hmac-sha256') return createHmac('sha256', key).update(message).digest().equals(signature);
  return key.length === 32 && signature.length === 64 && edVerify(null, message, ed25519PublicKey(key), signature);
}

export function computeSignature(algorithm: Algorithm, secret: Uint8Array, canonical: string): Buffer {
  const message = Buffer.from(canonical, 'utf8');
  if (algorithm === 'hmac-sha256') return createHmac('sha256', secret).update(message).digest();
  return edSign(null, message, ed25519PrivateKey(secret));
}

/** Returns a copy of the envelope with both signature headers set, signed with the active key. */
export function signEnvelope(envelope: Envelope, config: StemSigningConfig): Envelope {
  const keyId = config.activeKeyId;
  const secret = keyId === null ? undefined : config.signingKeys.get(keyId);
  if (!config.canSign || keyId === null || !secret) {
    throw new Error('Signing configuration incomplete: the config has no usable active key (Stem throws StateError here)');
  }
  if (config.algorithm === 'ed25519' && !config.verificationKeys.has(keyId)) {
    throw new Error(`Missing public key for "${keyId}" (Stem throws StateError here)`);
  }
  const signature = computeSignature(config.algorithm, secret, canonicalEnvelope(envelope));
  return { ...envelope, headers: { ...envelope.headers, [SIGNATURE_HEADER]: signature.toString('base64'), [SIGNATURE_KEY_HEADER]: keyId } };
}

export type VerifyResult =
  | { readonly ok: true; readonly keyId: string | null; readonly skipped: boolean }
  | { readonly ok: false; readonly keyId: string | null; readonly message: string; readonly deadLettered: boolean };

/**
 * Stem's `verify`. Failures carry Stem's exact messages. `deadLettered: false` marks the Ed25519
 * length errors that Stem raises as ArgumentError: no dead letter, the entry loops in pending.
 */
export function verifyEnvelope(envelope: Envelope, config: StemSigningConfig): VerifyResult {
  const signatureText = envelope.headers[SIGNATURE_HEADER];
  const keyId = envelope.headers[SIGNATURE_KEY_HEADER] ?? null;
  if (!config.enabled) return { ok: true, keyId, skipped: true };
  if (signatureText === undefined || keyId === null) {
    return { ok: false, keyId, message: 'missing signature headers', deadLettered: true };
  }
  const key = config.verificationKeys.get(keyId);
  if (!key) return { ok: false, keyId, message: `unknown signing key "${keyId}"`, deadLettered: true };
  let signature: Buffer;
  try {
    signature = decodeDartBase64(signatureText);
  } catch (error) {
    if (!(error instanceof Base64FormatError)) throw error;
    return { ok: false, keyId, message: 'signature header is not base64 encoded', deadLettered: true };
  }
  const message = Buffer.from(canonicalEnvelope(envelope), 'utf8');
  if (config.algorithm === 'ed25519') {
    if (key.length !== 32) return { ok: false, keyId, message: 'Invalid public key length (ArgumentError)', deadLettered: false };
    if (signature.length !== 64) return { ok: false, keyId, message: 'Invalid signature length (ArgumentError)', deadLettered: false };
  }
  return verifiesUnder(config.algorithm, message, signature, key) ? { ok: true, keyId, skipped: false } : { ok: false, keyId, message: 'signature mismatch', deadLettered: true };
}

/** Which of the given keys produced this envelope's signature, whatever its key header says. */
export function keysThatVerify(algorithm: Algorithm, envelope: Envelope, keys: ReadonlyMap<string, KeyMaterial>, timezone?: string): string[] {
  const header = envelope.headers[SIGNATURE_HEADER];
  if (header === undefined) return [];
  let signature: Buffer;
  try {
    signature = decodeDartBase64(header);
  } catch {
    return [];
  }
  let message: Buffer;
  try {
    message = Buffer.from(canonicalEnvelope(envelope, timezone), 'utf8');
  } catch {
    return [];
  }
  const verifying: string[] = [];
  for (const [id, key] of keys) {
    const material = algorithm === 'hmac-sha256' ? key.secret : key.publicKey;
    if (material && verifiesUnder(algorithm, message, signature, material)) verifying.push(id);
  }
  return verifying;
}

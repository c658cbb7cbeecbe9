import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER, canonicalEnvelope, canonicalJson, dartUtcIso } from '../../src/stem/canonical.js';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';
import { loadStemSigningConfig, type SigningEnv } from '../../src/stem/signing-env.js';
import { ANOTHER_SECRET, ED_PUBLIC, ED_SEED, EXAMPLE_PRIMARY, EXAMPLE_ROTATED, SIGNATURES, V1, V1_CANONICAL, V1_SHA256, V2, V2_CANONICAL, V2_SHA256 } from './vectors.js';

const hmac = (id: string, secret: string): SigningEnv => ({ STEM_SIGNING_KEYS: `${id}:${secret}`, STEM_SIGNING_ACTIVE_KEY: id });
const ed: SigningEnv = { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `primary:${ED_PUBLIC}`, STEM_SIGNING_PRIVATE_KEYS: `primary:${ED_SEED}`, STEM_SIGNING_ACTIVE_KEY: 'primary' };

describe('canonical bytes', () => {
  it('V1 matches the sheet byte for byte', () => {
    const canonical = canonicalEnvelope(V1);
    expect(canonical).toBe(V1_CANONICAL);
    expect(Buffer.byteLength(canonical)).toBe(218);
    expect(createHash('sha256').update(canonical).digest('hex')).toBe(V1_SHA256);
  });

  it('V2 matches: code-unit key order, nesting, escapes, microseconds, nulls', () => {
    const canonical = canonicalEnvelope(V2);
    expect(canonical).toBe(V2_CANONICAL);
    expect(Buffer.byteLength(canonical)).toBe(445);
    expect(createHash('sha256').update(canonical).digest('hex')).toBe(V2_SHA256);
  });

  it('sorts keys by UTF-16 code units, not integer-first like JSON.stringify', () => {
    expect(canonicalJson({ a: 1, B: 2, '9': 3, '10': 4 })).toBe('{"10":4,"9":3,"B":2,"a":1}');
    expect(JSON.stringify({ a: 1, B: 2, '9': 3, '10': 4 })).not.toBe('{"10":4,"9":3,"B":2,"a":1}');
  });

  it('excludes both signature headers from the signed headers', () => {
    const withHeaders = { ...V1, headers: { [SIGNATURE_HEADER]: 'x', [SIGNATURE_KEY_HEADER]: 'k', other: 'v' } };
    expect(canonicalEnvelope(withHeaders)).toContain('"headers":{"other":"v"}');
  });

  it('refuses values Dart cannot encode', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/NaN/);
    expect(() => canonicalJson({ x: Number.POSITIVE_INFINITY })).toThrow();
  });
});

describe('dates as Dart DateTime.parse(...).toUtc().toIso8601String()', () => {
  it.each([
    ['2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z'],
    ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00.000Z'],
    ['2024-05-06T07:08:09.123456Z', '2024-05-06T07:08:09.123456Z'],
    ['2024-05-06T07:08:09.123000Z', '2024-05-06T07:08:09.123Z'],
    ['2024-05-06T07:08:09.1234567891Z', '2024-05-06T07:08:09.123456Z'],
    ['2024-05-06T07:08:09.1Z', '2024-05-06T07:08:09.100Z'],
    ['2024-05-06T09:08:09.5+02:00', '2024-05-06T07:08:09.500Z'],
    ['2024-05-06T02:08:09-0500', '2024-05-06T07:08:09.000Z'],
    ['2024-05-06 07:08:09Z', '2024-05-06T07:08:09.000Z'],
    ['20240506T070809Z', '2024-05-06T07:08:09.000Z'],
    ['2024-05-06', new Date(2024, 4, 6).toISOString()],
  ])('%s → %s', (input, expected) => {
    expect(dartUtcIso(input)).toBe(expected);
  });

  it('treats a zone-less time as local time, as Dart does', () => {
    const local = new Date(2024, 4, 6, 7, 8, 9).toISOString();
    expect(dartUtcIso('2024-05-06T07:08:09')).toBe(local);
  });

  it('rejects what Dart rejects', () => {
    expect(() => dartUtcIso('yesterday')).toThrow(/invalid date/);
    expect(() => dartUtcIso('2024-05-06Z')).toThrow(/invalid date/); // a zone needs a time
    expect(() => dartUtcIso('2024-05-06T07:08:09.Z')).toThrow(/invalid date/);
  });
});

describe('signatures match the sheet', () => {
  const rows = [
    ['anotherSecret', hmac('primary', ANOTHER_SECRET), 'primary'],
    ['examplePrimary', hmac('primary', EXAMPLE_PRIMARY), 'primary'],
    ['exampleRotated', hmac('rotated', EXAMPLE_ROTATED), 'rotated'],
    ['ed25519', ed, 'primary'],
  ] as const;
  for (const [vector, envelope] of [['V1', V1], ['V2', V2]] as const) {
    it.each(rows)(`${vector} %s`, (name, env, keyId) => {
      const signed = signEnvelope(envelope, loadStemSigningConfig(env));
      expect(signed.headers[SIGNATURE_HEADER]).toBe(SIGNATURES[vector][name]);
      expect(signed.headers[SIGNATURE_KEY_HEADER]).toBe(keyId);
      expect(verifyEnvelope(signed, loadStemSigningConfig(env))).toEqual({ ok: true, keyId, skipped: false });
    });
  }
});

describe('verification failures carry Stem messages', () => {
  const config = loadStemSigningConfig(hmac('primary', ANOTHER_SECRET));
  const signed = signEnvelope(V1, config);

  it('tampered args → signature mismatch', () => {
    const tampered = { ...signed, args: { value: 2 } };
    expect(verifyEnvelope(tampered, config)).toMatchObject({ ok: false, message: 'signature mismatch', keyId: 'primary' });
  });

  it('missing either header → missing signature headers', () => {
    const { [SIGNATURE_HEADER]: _signature, ...noSignature } = signed.headers;
    expect(verifyEnvelope({ ...signed, headers: noSignature }, config)).toMatchObject({ ok: false, message: 'missing signature headers', keyId: 'primary' });
    const { [SIGNATURE_KEY_HEADER]: _key, ...noKey } = signed.headers;
    expect(verifyEnvelope({ ...signed, headers: noKey }, config)).toMatchObject({ ok: false, message: 'missing signature headers', keyId: null });
  });

  it('unknown key id → unknown signing key "<id>"', () => {
    const other = { ...signed, headers: { ...signed.headers, [SIGNATURE_KEY_HEADER]: 'missing' } };
    expect(verifyEnvelope(other, config)).toMatchObject({ ok: false, message: 'unknown signing key "missing"' });
  });

  it('bad base64 → signature header is not base64 encoded', () => {
    const bad = { ...signed, headers: { ...signed.headers, [SIGNATURE_HEADER]: 'not base64!' } };
    expect(verifyEnvelope(bad, config)).toMatchObject({ ok: false, message: 'signature header is not base64 encoded' });
  });

  it('a disabled config accepts everything, as Stem does', () => {
    expect(verifyEnvelope(V1, loadStemSigningConfig({}))).toEqual({ ok: true, keyId: null, skipped: true });
  });

  it('an HMAC-length signature under Ed25519 is an ArgumentError path, not a dead letter', () => {
    const edConfig = loadStemSigningConfig(ed);
    const hmacSigned = { ...signed, headers: { ...signed.headers, [SIGNATURE_KEY_HEADER]: 'primary' } };
    expect(verifyEnvelope(hmacSigned, edConfig)).toMatchObject({ ok: false, deadLettered: false });
  });

  it('signing without a usable active key fails like Stem', () => {
    const verifyOnly = loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `primary:${ED_PUBLIC}`, STEM_SIGNING_ACTIVE_KEY: 'primary' });
    expect(() => signEnvelope(V1, verifyOnly)).toThrow(/Signing configuration incomplete/);
  });
});

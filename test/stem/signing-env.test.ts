import { describe, expect, it } from 'vitest';
import { decodeDartBase64 } from '../../src/stem/base64.js';
import { StemConfigError, dartTrim, formatKeyList, loadStemSigningConfig, parseAlgorithm, parseKeyList } from '../../src/stem/signing-env.js';
import { lintSigningEnv } from '../../src/stem/lint.js';

describe('Dart base64', () => {
  it('accepts both alphabets, even mixed, and %3D padding', () => {
    expect(decodeDartBase64('-_8=')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeDartBase64('+/8=')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeDartBase64('+_8=')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeDartBase64('YW5vdGhlci1zZWNyZXQ%3D')).toEqual(Buffer.from('another-secret'));
    expect(decodeDartBase64('YW5vdGhlci1zZWNyZXQ%3d')).toEqual(Buffer.from('another-secret'));
    expect(decodeDartBase64('')).toEqual(Buffer.alloc(0));
  });

  it.each([
    ['missing padding', 'YW5vdGhlci1zZWNyZXQ'],
    ['whitespace inside', 'YW5v dGhlci1zZWNyZXQ='],
    ['invalid character', 'YW5v*Ghlci1zZWNyZXQ='],
    ['padding in the middle', 'YW==dGhl'],
    ['three padding characters', 'Y==='],
    ['non-canonical trailing bits (==)', 'YR=='],
    ['non-canonical trailing bits (=)', 'YWJ='],
  ])('rejects %s', (_name, value) => {
    expect(() => decodeDartBase64(value)).toThrow();
  });
});

describe('algorithm', () => {
  it('defaults to hmac-sha256 when empty or absent, and is case-insensitive', () => {
    expect(parseAlgorithm(undefined)).toBe('hmac-sha256');
    expect(parseAlgorithm('  ')).toBe('hmac-sha256');
    expect(parseAlgorithm('HMAC-SHA256')).toBe('hmac-sha256');
    expect(parseAlgorithm(' Ed25519 ')).toBe('ed25519');
  });

  it('throws FormatException on anything else, even with no keys', () => {
    expect(() => loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'rsa' })).toThrow('Unsupported signing algorithm "rsa"');
  });
});

describe('key lists', () => {
  it('trims, skips empty entries and trailing commas', () => {
    const entries = parseKeyList(' a:YQ== ,, b : Yg== ,', 'STEM_SIGNING_KEYS');
    expect(entries.map((entry) => [entry.id, entry.material.toString()])).toEqual([
      ['a', 'a'],
      ['b', 'b'],
    ]);
  });

  it('lets a later duplicate overwrite an earlier one', () => {
    const config = loadStemSigningConfig({ STEM_SIGNING_KEYS: 'a:YQ==,a:Yg==', STEM_SIGNING_ACTIVE_KEY: 'a' });
    expect(config.verificationKeys.get('a')?.toString()).toBe('b');
  });

  it('accepts an empty value as a zero-length key, and never checks lengths', () => {
    const config = loadStemSigningConfig({ STEM_SIGNING_KEYS: 'primary:', STEM_SIGNING_ACTIVE_KEY: 'primary' });
    expect(config.verificationKeys.get('primary')?.length).toBe(0);
  });

  it.each([
    ['no colon', 'abc', /entry #1\. Expected format keyId:base64Value/],
    ['two colons', 'a:b:c', /entry #1/],
    ['empty id', ':YQ==', /id cannot be empty/],
    ['bad base64', 'a:YQ', /"a" must be base64 encoded/],
  ])('throws FormatException for %s', (_name, value, message) => {
    let error: unknown;
    try {
      parseKeyList(value, 'STEM_SIGNING_KEYS');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(StemConfigError);
    expect((error as StemConfigError).stemException).toBe('FormatException');
    expect((error as Error).message).toMatch(message);
  });

  it('never echoes a malformed entry (it may be a secret)', () => {
    expect(() => parseKeyList('supersecretvalue', 'STEM_SIGNING_KEYS')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('supersecretvalue') }));
  });

  it('formats standard padded base64', () => {
    expect(formatKeyList([{ id: 'x', material: Buffer.from([0xfb, 0xff]) }])).toBe('x:+/8=');
  });
});

describe('HMAC result states (TV1)', () => {
  it('TV1: enabled, active current, old present', () => {
    const config = loadStemSigningConfig({
      STEM_SIGNING_KEYS: 'current:c3VwZXItc2VjcmV0,old:b2xkLXNlY3JldA==',
      STEM_SIGNING_ACTIVE_KEY: 'current',
      STEM_SIGNING_ALGORITHM: 'hmac-sha256',
    });
    expect(config).toMatchObject({ enabled: true, canSign: true, activeKeyId: 'current', algorithm: 'hmac-sha256' });
    expect(config.verificationKeys.get('old')?.toString()).toBe('old-secret');
  });

  it('an empty environment is disabled', () => {
    expect(loadStemSigningConfig({})).toMatchObject({ enabled: false, canSign: false });
  });

  it('only empty entries → disabled, and ACTIVE_KEY is ignored', () => {
    expect(loadStemSigningConfig({ STEM_SIGNING_KEYS: ' , ,', STEM_SIGNING_ACTIVE_KEY: 'x' })).toMatchObject({ enabled: false });
  });

  it('keys without an active key → StateError', () => {
    expect(() => loadStemSigningConfig({ STEM_SIGNING_KEYS: 'a:YQ==', STEM_SIGNING_ACTIVE_KEY: '  ' })).toThrow('Missing STEM_SIGNING_ACTIVE_KEY; required when signing keys are provided.');
  });

  it('active key not among the keys → StateError', () => {
    expect(() => loadStemSigningConfig({ STEM_SIGNING_KEYS: 'a:YQ==', STEM_SIGNING_ACTIVE_KEY: 'b' })).toThrow('Active signing key "b" not present in STEM_SIGNING_KEYS.');
  });

  it('ignores PUBLIC/PRIVATE variables in HMAC mode', () => {
    const config = loadStemSigningConfig({ STEM_SIGNING_KEYS: 'a:YQ==', STEM_SIGNING_ACTIVE_KEY: 'a', STEM_SIGNING_PUBLIC_KEYS: 'garbage' });
    expect(config.enabled).toBe(true);
  });
});

describe('Ed25519 result states', () => {
  const pub = 'MQKrHe7hFRCoOi1DGdEdQOcfQGqEcTQGt79szn6gTJ0=';
  const seed = 'v/eFuFJGEl0ieIlYionIcFjYKmKK/lMrfi+pGcLsKew=';

  it('no public keys → disabled even with private keys', () => {
    expect(loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PRIVATE_KEYS: `p:${seed}`, STEM_SIGNING_ACTIVE_KEY: 'p' })).toMatchObject({ enabled: false });
  });

  it('verify-only: public keys, no private keys, active optional', () => {
    expect(loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${pub}` })).toMatchObject({ enabled: true, canSign: false, activeKeyId: null });
  });

  it('active missing from private keys → StateError', () => {
    expect(() =>
      loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${pub}`, STEM_SIGNING_PRIVATE_KEYS: `p:${seed}`, STEM_SIGNING_ACTIVE_KEY: 'q' }),
    ).toThrow('Active signing key "q" missing from STEM_SIGNING_PRIVATE_KEYS.');
  });

  it('active not among public keys is not checked at parse time', () => {
    const config = loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${pub}`, STEM_SIGNING_PRIVATE_KEYS: `q:${seed}`, STEM_SIGNING_ACTIVE_KEY: 'q' });
    expect(config).toMatchObject({ enabled: true, canSign: true });
  });

  it('ignores STEM_SIGNING_KEYS in Ed25519 mode', () => {
    expect(loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_KEYS: 'a:YQ==', STEM_SIGNING_ACTIVE_KEY: 'a' })).toMatchObject({ enabled: false });
  });

  it('PUBLIC_KEYS of only empty entries still parses PRIVATE_KEYS: a bad private list makes Stem refuse to start (stem-interop-2 §7.5)', () => {
    expect(() => loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: ',', STEM_SIGNING_PRIVATE_KEYS: 'broken', STEM_SIGNING_ACTIVE_KEY: 'a' })).toThrow(/invalid private key entry #1/);
    expect(() => loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: ' , ', STEM_SIGNING_PRIVATE_KEYS: `p:${seed}`, STEM_SIGNING_ACTIVE_KEY: 'q' })).toThrow('Active signing key "q" missing from STEM_SIGNING_PRIVATE_KEYS.');
    expect(loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: ',', STEM_SIGNING_PRIVATE_KEYS: `p:${seed}`, STEM_SIGNING_ACTIVE_KEY: 'p' })).toMatchObject({ enabled: false, canSign: false });
    // a blank PUBLIC_KEYS returns before PRIVATE_KEYS is read at all
    expect(loadStemSigningConfig({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: '  ', STEM_SIGNING_PRIVATE_KEYS: 'broken' })).toMatchObject({ enabled: false });
  });

  it('lint says Stem refuses that config', () => {
    const findings = lintSigningEnv({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: ',', STEM_SIGNING_PRIVATE_KEYS: 'broken', STEM_SIGNING_ACTIVE_KEY: 'a' });
    expect(findings).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SR001', severity: 'error' })]));
  });
});

describe("Dart's trim", () => {
  it('also strips U+0085 (NEL), which JS trim keeps, from values, ids and base64 parts', () => {
    expect('\u0085a\u0085'.trim()).toBe('\u0085a\u0085');
    expect(dartTrim('\u0085\u00A0 a \uFEFF\u0085')).toBe('a');
    const config = loadStemSigningConfig({ STEM_SIGNING_KEYS: '\u0085k\u0085:\u0085YQ==\u0085', STEM_SIGNING_ACTIVE_KEY: 'k\u0085' });
    expect(config).toMatchObject({ enabled: true, activeKeyId: 'k' });
    expect([...config.verificationKeys.keys()]).toEqual(['k']);
  });
});

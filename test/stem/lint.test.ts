import { describe, expect, it } from 'vitest';
import { ed25519PublicFromSeed } from '../../src/stem/keys.js';
import { LINT_CODES, lintSigningEnv } from '../../src/stem/lint.js';
import type { SigningEnv } from '../../src/stem/signing-env.js';
import { ED_PUBLIC, ED_SEED } from './vectors.js';

const b64 = (bytes: number, fill = 7) => Buffer.alloc(bytes, fill).toString('base64');
const codes = (env: SigningEnv, severity?: 'error' | 'warning') =>
  lintSigningEnv(env)
    .filter((finding) => severity === undefined || finding.severity === severity)
    .map((finding) => finding.code);

describe('linter errors', () => {
  it.each<[string, SigningEnv, string]>([
    ['Stem refuses: unsupported algorithm', { STEM_SIGNING_ALGORITHM: 'rsa' }, LINT_CODES.stemRefuses],
    ['Stem refuses: missing active key', { STEM_SIGNING_KEYS: `a:${b64(32)}` }, LINT_CODES.stemRefuses],
    ['Stem refuses: malformed entry', { STEM_SIGNING_KEYS: 'garbage', STEM_SIGNING_ACTIVE_KEY: 'a' }, LINT_CODES.stemRefuses],
    ['ed25519 algorithm with only HMAC keys (silently disabled)', { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_KEYS: `a:${b64(32)}`, STEM_SIGNING_ACTIVE_KEY: 'a' }, LINT_CODES.signingDisabledMismatch],
    ['HMAC default with only Ed25519 keys (silently disabled)', { STEM_SIGNING_PUBLIC_KEYS: `p:${ED_PUBLIC}`, STEM_SIGNING_PRIVATE_KEYS: `p:${ED_SEED}`, STEM_SIGNING_ACTIVE_KEY: 'p' }, LINT_CODES.signingDisabledMismatch],
    ['duplicate key ids', { STEM_SIGNING_KEYS: `a:${b64(32)},a:${b64(32, 9)}`, STEM_SIGNING_ACTIVE_KEY: 'a' }, LINT_CODES.duplicateKeyId],
    ['empty key material', { STEM_SIGNING_KEYS: `a:${b64(32)},b:`, STEM_SIGNING_ACTIVE_KEY: 'a' }, LINT_CODES.emptyKeyMaterial],
    ['Ed25519 public key of the wrong length', { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${b64(31)}` }, LINT_CODES.ed25519WrongLength],
    ['Ed25519 seed of the wrong length', { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${ED_PUBLIC}`, STEM_SIGNING_PRIVATE_KEYS: `p:${b64(16)}`, STEM_SIGNING_ACTIVE_KEY: 'p' }, LINT_CODES.ed25519WrongLength],
    ['64-byte libsodium private key', { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${ED_PUBLIC}`, STEM_SIGNING_PRIVATE_KEYS: `p:${Buffer.concat([Buffer.from(ED_SEED, 'base64'), Buffer.from(ED_PUBLIC, 'base64')]).toString('base64')}`, STEM_SIGNING_ACTIVE_KEY: 'p' }, LINT_CODES.ed25519LibsodiumPrivate],
    ['public key not matching its seed', { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${ed25519PublicFromSeed(Buffer.alloc(32, 1)).toString('base64')}`, STEM_SIGNING_PRIVATE_KEYS: `p:${ED_SEED}`, STEM_SIGNING_ACTIVE_KEY: 'p' }, LINT_CODES.ed25519SeedMismatch],
    ['key id with whitespace', { STEM_SIGNING_KEYS: `my key:${b64(32)}`, STEM_SIGNING_ACTIVE_KEY: 'my key' }, LINT_CODES.invalidKeyId],
    ['Ed25519 active key without a public key', { STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${ED_PUBLIC}`, STEM_SIGNING_PRIVATE_KEYS: `q:${ED_SEED}`, STEM_SIGNING_ACTIVE_KEY: 'q' }, LINT_CODES.ed25519ActiveWithoutPublic],
  ])('%s', (_name, env, code) => {
    expect(codes(env, 'error')).toContain(code);
  });
});

describe('linter warnings', () => {
  it('HMAC secret under 32 bytes is a warning, not an error', () => {
    const env = { STEM_SIGNING_KEYS: `a:${b64(25)}`, STEM_SIGNING_ACTIVE_KEY: 'a' };
    expect(codes(env, 'warning')).toContain(LINT_CODES.hmacShortSecret);
    expect(codes(env, 'error')).toEqual([]);
  });

  it('no keys at all: signing disabled', () => {
    expect(codes({}, 'warning')).toEqual([LINT_CODES.signingDisabled]);
  });

  it('variables of the other algorithm are ignored', () => {
    expect(codes({ STEM_SIGNING_KEYS: `a:${b64(32)}`, STEM_SIGNING_ACTIVE_KEY: 'a', STEM_SIGNING_PUBLIC_KEYS: `p:${ED_PUBLIC}` }, 'warning')).toContain(LINT_CODES.ignoredVariable);
  });

  it('non-canonical algorithm spelling', () => {
    expect(codes({ STEM_SIGNING_ALGORITHM: 'HMAC-SHA256', STEM_SIGNING_KEYS: `a:${b64(32)}`, STEM_SIGNING_ACTIVE_KEY: 'a' }, 'warning')).toContain(LINT_CODES.nonCanonicalAlgorithm);
  });

  it('Ed25519 verify-only config', () => {
    expect(codes({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `p:${ED_PUBLIC}` }, 'warning')).toContain(LINT_CODES.ed25519VerifyOnly);
  });
});

describe('clean configs', () => {
  it('a good HMAC config has no findings', () => {
    expect(lintSigningEnv({ STEM_SIGNING_ALGORITHM: 'hmac-sha256', STEM_SIGNING_KEYS: `a:${b64(32)},b:${b64(32, 8)}`, STEM_SIGNING_ACTIVE_KEY: 'b' })).toEqual([]);
  });

  it('a good Ed25519 config has no findings', () => {
    expect(lintSigningEnv({ STEM_SIGNING_ALGORITHM: 'ed25519', STEM_SIGNING_PUBLIC_KEYS: `primary:${ED_PUBLIC}`, STEM_SIGNING_PRIVATE_KEYS: `primary:${ED_SEED}`, STEM_SIGNING_ACTIVE_KEY: 'primary' })).toEqual([]);
  });

  it('findings never contain key material', () => {
    const secret = b64(25, 3);
    const text = JSON.stringify(lintSigningEnv({ STEM_SIGNING_KEYS: `a:${secret},a:${secret}`, STEM_SIGNING_ACTIVE_KEY: 'a' }));
    expect(text).not.toContain(secret);
  });
});

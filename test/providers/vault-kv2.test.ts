/** vault-kv2 through the real node-vault client against the Vault emulator. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import createVaultKv2Provider, { type VaultKv2Options } from '../../providers/vault-kv2.js';
import { ConfigError, ConflictError } from '../../src/errors.js';
import { VaultEmulator } from '../emulators/vault.js';

let vault: VaultEmulator;
const FIELDS = ['STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY'];
const noWait = { sleep: async () => undefined };

beforeAll(async () => {
  vault = await new VaultEmulator().start();
});
afterAll(() => vault.stop());
beforeEach(() => {
  vault.namespaces.clear();
  vault.faults.length = 0;
  vault.mount('secret');
  vault.put('secret', 'stem/billing', { STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1', OTHER: 'keep me', nested: { a: 1 } });
});

const provider = (options: Partial<VaultKv2Options> = {}) =>
  createVaultKv2Provider({ target: 'vault', mount: 'secret', path: 'stem/billing', address: vault.address, env: { VAULT_TOKEN: 'root-token' }, retry: noWait, ...options });

describe('vault-kv2 provider', () => {
  it('reads the fields with the KV version; writes with cas, preserving every other field', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    expect(snapshot).toEqual({ fields: { STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1' }, version: 'kv2:1' });
    const before = vault.requests.length;
    const written = await target.write({ set: { STEM_SIGNING_KEYS: 'k1:YQ==,k2:Yg==' }, expectedVersion: snapshot.version, idempotencyKey: 't:vault' });
    expect(written.version).toBe('kv2:2');
    expect(vault.current('secret', 'stem/billing')?.data).toEqual({ STEM_SIGNING_KEYS: 'k1:YQ==,k2:Yg==', STEM_SIGNING_ACTIVE_KEY: 'k1', OTHER: 'keep me', nested: { a: 1 } });
    const post = vault.requests.filter((r) => r.method === 'POST').at(-1);
    expect(JSON.parse(post?.body ?? '{}').options).toEqual({ cas: 1 });
    // the version just read is what the write is planned on: one request, the write itself
    expect(vault.requests.slice(before).map((r) => r.method)).toEqual(['POST']);
  });

  it('a stale expected version, or a writer racing between our read and write, is a ConflictError', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    vault.put('secret', 'stem/billing', { STEM_SIGNING_KEYS: 'x:YQ==', STEM_SIGNING_ACTIVE_KEY: 'x' });
    await expect(target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k1' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toBeInstanceOf(ConflictError);
    const fresh = await target.read(FIELDS);
    vault.faults.push({ kind: 'concurrent-write', data: { STEM_SIGNING_KEYS: 'y:YQ==' } });
    await expect(target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k1' }, expectedVersion: fresh.version, idempotencyKey: 'x' })).rejects.toThrow(/changed concurrently/);
    expect(vault.current('secret', 'stem/billing')?.data).toEqual({ STEM_SIGNING_KEYS: 'y:YQ==' });
  });

  it('refuses a KV v1 mount: its cas is silently ignored', async () => {
    vault.mount('kv1', '1');
    await expect(provider({ mount: 'kv1' }).read(FIELDS)).rejects.toThrow(/not KV v2 \(KV v1 silently ignores check-and-set\)/);
    // every target on it is refused, each under its own name
    await expect(provider({ mount: 'kv1', target: 'second' }).read(FIELDS)).rejects.toThrow(/target "second": mount "kv1" is kv version 1/);
  });

  it('targets on one mount ask Vault what the mount is once', async () => {
    vault.mount('shared');
    for (const path of ['a', 'b', 'c']) vault.put('shared', path, { STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1' });
    const before = vault.requests.length;
    await Promise.all(['a', 'b', 'c'].map((path) => provider({ mount: 'shared', path, target: path }).read(FIELDS)));
    const lookups = vault.requests.slice(before).filter((r) => r.path.startsWith('/v1/sys/internal/ui/mounts/'));
    expect(lookups).toHaveLength(1);
  });

  it('clear errors: no token, a wrong token, a missing secret, an unknown mount', async () => {
    await expect(provider({ env: {} }).read(FIELDS)).rejects.toThrow('target "vault": $VAULT_TOKEN is not set');
    await expect(provider({ env: { VAULT_TOKEN: 'nope' } }).read(FIELDS)).rejects.toThrow(/permission denied \(the token's policy needs read, create and update on secret\/data\/stem\/billing\)/);
    await expect(provider({ path: 'stem/missing' }).read(FIELDS)).rejects.toBeInstanceOf(ConfigError);
    await expect(provider({ mount: 'nosuch' }).read(FIELDS)).rejects.toThrow(/permission denied|mount/);
    await expect(provider({ address: undefined, env: { VAULT_TOKEN: 'root-token' } }).read(FIELDS)).rejects.toThrow(/no Vault address/);
  });

  it('VAULT_ADDR and VAULT_TOKEN conventions; AppRole login; namespaces keep secrets apart', async () => {
    expect((await provider({ address: undefined, env: { VAULT_ADDR: vault.address, VAULT_TOKEN: 'root-token' } }).read(FIELDS)).version).toBe('kv2:1');
    vault.approles.set('role-1', 'secret-1');
    const approle = provider({ env: { ROLE: 'role-1', SECRET: 'secret-1' }, auth: { method: 'approle', roleIdEnv: 'ROLE', secretIdEnv: 'SECRET' } });
    expect((await approle.read(FIELDS)).fields.STEM_SIGNING_ACTIVE_KEY).toBe('k1');
    const badRole = provider({ env: { ROLE: 'role-1', SECRET: 'wrong' }, auth: { method: 'approle', roleIdEnv: 'ROLE', secretIdEnv: 'SECRET' } });
    await expect(badRole.read(FIELDS)).rejects.toThrow(/AppRole login/);
    vault.mount('secret', '2', { namespace: 'team-a' });
    vault.put('secret', 'stem/billing', { STEM_SIGNING_ACTIVE_KEY: 'team-a-key' }, 'team-a');
    expect((await provider({ namespace: 'team-a' }).read(FIELDS)).fields.STEM_SIGNING_ACTIVE_KEY).toBe('team-a-key');
  });

  it('retries throttling and 5xx with backoff, but not conflicts or permission errors', async () => {
    const target = provider();
    vault.faults.push({ kind: 'status', status: 429 }, { kind: 'status', status: 503 });
    expect((await target.read(FIELDS)).version).toBe('kv2:1');
    vault.faults.push({ kind: 'status', status: 500 }, { kind: 'status', status: 500 }, { kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    await expect(provider().read(FIELDS)).rejects.toThrow(/failed: internal error/);
  });

  it('a connection reset after the write landed: the retry meets the new version as a conflict (the engine re-reads and finds its write)', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    vault.faults.push({ kind: 'reset-after-write' });
    await expect(target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k9' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toBeInstanceOf(ConflictError);
    expect(vault.current('secret', 'stem/billing')?.data.STEM_SIGNING_ACTIVE_KEY).toBe('k9');
  });

  it('verifies the server against a CA bundle (VAULT_CACERT); an unrelated CA fails', async () => {
    const { createTestPki } = await import('../helpers/tls.js');
    const { readFileSync } = await import('node:fs');
    const pki = createTestPki();
    const secure = await new VaultEmulator().useTls(readFileSync(pki.serverCert), readFileSync(pki.serverKey)).start();
    try {
      secure.mount('secret');
      secure.put('secret', 'stem/billing', { STEM_SIGNING_ACTIVE_KEY: 'tls-key' });
      const over = (env: NodeJS.ProcessEnv) => createVaultKv2Provider({ target: 'vault', mount: 'secret', path: 'stem/billing', address: secure.address, env: { VAULT_TOKEN: 'root-token', ...env }, retry: noWait });
      expect((await over({ VAULT_CACERT: pki.ca }).read(FIELDS)).fields.STEM_SIGNING_ACTIVE_KEY).toBe('tls-key');
      await expect(over({ VAULT_CACERT: pki.otherCa }).read(FIELDS)).rejects.toThrow(/certificate/i);
    } finally {
      await secure.stop();
    }
  });

  it('a non-string field is refused rather than coerced', async () => {
    vault.put('secret', 'stem/billing', { STEM_SIGNING_KEYS: ['not', 'a', 'string'] });
    await expect(provider().read(FIELDS)).rejects.toThrow(/STEM_SIGNING_KEYS is not a string/);
  });
});

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootstrapState } from '../../src/core/machine.js';
import { LeaseHeldError } from '../../src/errors.js';
import { createFileStore } from '../../src/store/file.js';
import { SimulatedClock } from '../helpers/clock.js';
import { tempDir } from '../helpers/fs.js';

const state = bootstrapState('ring', 'hmac-sha256', [{ target: 'a', audience: 'all', algorithm: 'hmac-sha256', keys: [{ id: 'k1', fingerprint: 'f1', hasSecret: true }], activeKeyId: 'k1' }], '2026-11-28T10:00:00.000Z');

function setup() {
  const dir = tempDir();
  const clock = new SimulatedClock();
  return { dir, clock, store: createFileStore({ dir, clock }) };
}

describe('file store', () => {
  it('round-trips state as JSON with mode 0600', async () => {
    const { dir, store } = setup();
    expect(await store.load('ring')).toBeNull();
    const lease = await store.acquire('ring', { owner: 'me', token: 't1', ttlMs: 1000 });
    await store.save(state, lease);
    expect(await store.load('ring')).toEqual(state);
    expect(statSync(join(dir, 'rings', 'ring.json')).mode & 0o777).toBe(0o600);
  });

  it('a live lease excludes others; an expired one can be taken; fencing increases', async () => {
    const { store, clock } = setup();
    const first = await store.acquire('ring', { owner: 'a', token: 'ta', ttlMs: 1000 });
    await expect(store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 })).rejects.toBeInstanceOf(LeaseHeldError);
    clock.increment(1001);
    const second = await store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 });
    expect(second.fence).toBe(first.fence + 1);
    await expect(store.save(state, first)).rejects.toThrow(/lease lost/);
    await store.save(state, second);
  });

  it('release frees the lease but keeps the fencing counter', async () => {
    const { store } = setup();
    const first = await store.acquire('ring', { owner: 'a', token: 'ta', ttlMs: 60_000 });
    await store.release(first);
    const second = await store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 60_000 });
    expect(second.fence).toBe(first.fence + 1);
  });

  it('pre-emption takes a held lease and fences the holder out', async () => {
    const { store } = setup();
    const holder = await store.acquire('ring', { owner: 'a', token: 'ta', ttlMs: 60_000 });
    const revoker = await store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 60_000, preempt: true });
    await expect(store.save(state, holder)).rejects.toBeInstanceOf(LeaseHeldError);
    await store.save(state, revoker);
  });

  it('appends audit events as JSON lines and filters by ring', async () => {
    const { dir, store } = setup();
    const actor = { user: 'u', host: 'h' };
    await store.appendAudit({ time: 't1', ring: 'a', actor, action: 'start', outcome: 'ok' });
    await store.appendAudit({ time: 't2', ring: 'b', actor, action: 'revoke', outcome: 'ok', details: { keyId: 'k' } });
    expect((await store.readAudit()).map((e) => e.time)).toEqual(['t1', 't2']);
    expect((await store.readAudit('b')).map((e) => e.action)).toEqual(['revoke']);
    expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('a corrupt state file is a clear error', async () => {
    const { dir, store } = setup();
    const lease = await store.acquire('ring', { owner: 'me', token: 't', ttlMs: 1000 });
    await store.save(state, lease);
    writeFileSync(join(dir, 'rings', 'ring.json'), '{oops');
    await expect(store.load('ring')).rejects.toThrow(/corrupt/);
  });
});

/** One behaviour suite for every state store (file, redis). */
import { describe, expect, it } from 'vitest';
import { bootstrapState } from '../../src/core/machine.js';
import { LeaseHeldError } from '../../src/errors.js';
import type { StateStore } from '../../src/store/types.js';
import { SimulatedClock } from '../helpers/clock.js';

export const sampleState = bootstrapState('ring', 'hmac-sha256', [{ target: 'a', audience: 'all', algorithm: 'hmac-sha256', keys: [{ id: 'k1', fingerprint: 'f1', hasSecret: true }], activeKeyId: 'k1' }], '2026-11-28T10:00:00.000Z');

export function storeContract(name: string, create: (clock: SimulatedClock) => Promise<StateStore>): void {
  const setup = async () => {
    const clock = new SimulatedClock();
    return { clock, store: await create(clock) };
  };

  describe(`${name} store contract`, () => {
    it('round-trips state; an unknown ring has none', async () => {
      const { store } = await setup();
      expect(await store.load('ring')).toBeNull();
      const lease = await store.acquire('ring', { owner: 'me', token: 't1', ttlMs: 1000 });
      await store.save(sampleState, lease);
      expect(await store.load('ring')).toEqual(sampleState);
      await store.close();
    });

    it('a live lease excludes others; an expired one can be taken; the fence grows; the old holder is fenced out', async () => {
      const { store, clock } = await setup();
      const first = await store.acquire('ring', { owner: 'a', token: 'ta', ttlMs: 1000 });
      await expect(store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 })).rejects.toBeInstanceOf(LeaseHeldError);
      await expect(store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 })).rejects.toThrow(/locked by a/);
      clock.increment(1001);
      const second = await store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 });
      expect(second.fence).toBeGreaterThan(first.fence);
      await expect(store.save(sampleState, first)).rejects.toThrow(/lease lost/);
      await store.save(sampleState, second);
      await store.close();
    });

    it('release frees the lease but the fence keeps counting; pre-emption fences the holder out', async () => {
      const { store } = await setup();
      const first = await store.acquire('ring', { owner: 'a', token: 'ta', ttlMs: 60_000 });
      await store.release(first);
      const second = await store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 60_000 });
      expect(second.fence).toBeGreaterThan(first.fence);
      const revoker = await store.acquire('ring', { owner: 'c', token: 'tc', ttlMs: 60_000, preempt: true });
      await expect(store.save(sampleState, second)).rejects.toBeInstanceOf(LeaseHeldError);
      await store.save(sampleState, revoker);
      await store.close();
    });

    it('every fenced save renews the lease', async () => {
      const { store, clock } = await setup();
      const lease = await store.acquire('ring', { owner: 'a', token: 'ta', ttlMs: 1000 });
      clock.increment(800);
      await store.save(sampleState, lease);
      clock.increment(800);
      await expect(store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 })).rejects.toBeInstanceOf(LeaseHeldError);
      clock.increment(201);
      await expect(store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 })).resolves.toMatchObject({ owner: 'b' });
      await store.close();
    });

    it('appends audit events in order and filters by ring', async () => {
      const { store } = await setup();
      const actor = { user: 'u', host: 'h' };
      await store.appendAudit({ time: 't1', ring: 'a', actor, action: 'start', outcome: 'ok' });
      await store.appendAudit({ time: 't2', ring: 'b', actor, action: 'revoke', outcome: 'ok', details: { keyId: 'k' } });
      expect((await store.readAudit()).map((event) => event.time)).toEqual(['t1', 't2']);
      expect(await store.readAudit('b')).toEqual([{ time: 't2', ring: 'b', actor, action: 'revoke', outcome: 'ok', details: { keyId: 'k' } }]);
      await store.close();
    });

    it('two orchestrators racing for one ring: exactly one wins', async () => {
      const { store } = await setup();
      const attempts = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.acquire('ring', { owner: `o${i}`, token: `t${i}`, ttlMs: 60_000 })));
      expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(1);
      await store.close();
    });
  });
}

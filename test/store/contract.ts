/** One behaviour suite for every state store (file, redis). */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { bootstrapState } from '../../src/core/guards.js';
import { ConfigError, LeaseHeldError } from '../../src/errors.js';
import type { StateStore } from '../../src/store/types.js';
import { SimulatedClock } from '../helpers/clock.js';

export const sampleState = bootstrapState('ring', 'hmac-sha256', [{ target: 'a', audience: 'all', algorithm: 'hmac-sha256', keys: [{ id: 'k1', fingerprint: 'f1', hasSecret: true }], activeKeyId: 'k1' }], '2026-11-28T10:00:00.000Z');

/** Reaches under a store, as an operator's editor or a disk fault would. */
export interface RawAccess {
  /** `where` as the store's messages name it. */
  readonly stateWhere: (ring: string) => string;
  putState(ring: string, text: string): Promise<void>;
  /** Deletes the audit record at `index` (0-based, in order). */
  removeAuditRecord(index: number): Promise<void>;
  /** Makes the current lease look held by this process identity. */
  setLeaseHolder(ring: string, holder: { pid: number; host: string }): Promise<void>;
}

export function storeContract(name: string, create: (clock: SimulatedClock) => Promise<{ store: StateStore; raw: RawAccess }>): void {
  const setup = async () => {
    const clock = new SimulatedClock();
    return { clock, ...(await create(clock)) };
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
      expect((await store.readAudit()).events.map((event) => event.time)).toEqual(['t1', 't2']);
      expect((await store.readAudit('b')).events).toEqual([{ time: 't2', ring: 'b', actor, action: 'revoke', outcome: 'ok', details: { keyId: 'k' }, prev: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
      await store.close();
    });

    it('state that is not state is refused naming where and the field, never taken as no state', async () => {
      const { store, raw } = await setup();
      const where = raw.stateWhere('ring');
      const cases: [string, RegExp][] = [
        ['[]', /is invalid at \(top level\)/],
        ['null', /is invalid at \(top level\)/],
        [JSON.stringify({ ...sampleState, keys: 'oops' }), /is invalid at keys: /],
        [JSON.stringify({ ...sampleState, transition: { kind: 'start' } }), /is invalid at transition\.id/],
        [JSON.stringify({ ...sampleState, activeKeyId: 'nope' }), /is invalid at activeKeyId/],
        [JSON.stringify({ ...sampleState, ring: 'other' }), /belongs to ring "other"/],
        ['{oops', /is corrupt \(not JSON\)/],
      ];
      for (const [text, message] of cases) {
        await raw.putState('ring', text);
        const error = await store.load('ring').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).exitCode).toBe(2);
        expect((error as Error).message).toContain(`state ${where} `);
        expect((error as Error).message).toMatch(message);
      }
      await store.close();
    });

    it('the audit trail is a hash chain: verify passes, and a removed record is the first break', async () => {
      const { store, raw } = await setup();
      const actor = { user: 'u', host: 'h' };
      for (const time of ['t1', 't2', 't3', 't4']) await store.appendAudit({ time, ring: 'a', actor, action: 'start', outcome: 'ok' });
      expect(await store.verifyAudit()).toMatchObject({ records: 4, firstBreak: null, torn: [] });
      await raw.removeAuditRecord(1);
      const report = await store.verifyAudit();
      expect(report.firstBreak?.problem).toMatch(/does not match the record before it/);
      expect((await store.readAudit()).events.map((event) => event.time)).toEqual(['t1', 't3', 't4']);
      expect(report.firstBreak?.at).toMatch(/(line 2|entry)/);
      await store.close();
    });

    it('a live lease whose holder process is gone from this host is taken over at once, audited; a live holder is honoured', async () => {
      const { store, raw } = await setup();
      await store.acquire('ring', { owner: 'crashed', token: 'ta', ttlMs: 600_000 });
      await raw.setLeaseHolder('ring', { pid: process.pid, host: hostname() });
      await expect(store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 })).rejects.toThrow(/locked by crashed/);
      await raw.setLeaseHolder('ring', { pid: 4_000_005, host: hostname() });
      const taken = await store.acquire('ring', { owner: 'b', token: 'tb', ttlMs: 1000 });
      expect(taken.fence).toBe(2);
      expect((await store.readAudit('ring')).events).toEqual([expect.objectContaining({ action: 'break-lease', details: expect.objectContaining({ why: 'holder process is gone' }) })]);
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

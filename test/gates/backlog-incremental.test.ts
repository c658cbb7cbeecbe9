/**
 * Incremental backlog evidence equals a full scan: after random appends, deliveries, acks, claims,
 * NOACK reads, deletes, trims, delayed moves, new groups and recreated streams, a count that builds
 * on what earlier counts remembered finds exactly what a count from nothing finds.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BacklogMemory, countBacklog, persistMemory, restoreMemory, type BacklogReport } from '../../src/stem/backlog.js';
import { PERSISTED_ENTRIES } from '../../src/stem/backlog-memory.js';
import { streamInfo } from '../../src/stem/backlog-read.js';
import { stemKeys } from '../../src/stem/redis-keys.js';
import { RedisServer } from '../helpers/redis-server.js';

const keys = stemKeys('stem');
const AFTER = new Date('2026-11-28T12:00:00.000Z');
const STREAMS = [keys.stream('emails'), keys.stream('emails', 3), keys.stream('billing')];
let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await new RedisServer().start();
  redis = server.client(0);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const count = (memory?: BacklogMemory) =>
  countBacklog(redis, { url: server.url(0), connectTimeout: 2000, commandTimeout: 10_000 }, { namespace: 'stem', controlNamespaces: ['stem'], keyIds: ['old'], after: AFTER, batchSize: 7, entriesPerUnit: 40, ...(memory ? { memory } : {}) });

/** What the gate decides on: every count but `scanned` (which an incremental count only estimates), per source. */
function decisive(report: BacklogReport) {
  const strip = ({ scanned: _scanned, ...rest }: BacklogReport['total']) => rest;
  return { total: strip(report.total), retained: strip(report.retained), bySource: report.bySource.map((source) => ({ key: source.key, source: source.source, group: source.group, ...strip(source.count) })) };
}

const headers = fc.constantFrom('{"stem-signature":"s","stem-signature-key":"old"}', '{"stem-signature":"s","stem-signature-key":"new"}', '{"stem-signature":"s","stem-signature-key":"new"}', '{}', 'not json', '{"stem-signature-key":"o\\u006cd"}');
const enqueuedAt = fc.constantFrom('2026-11-28T10:00:00.000000Z', '2026-11-28T13:00:00.000000Z', 'garbage');
const stream = fc.constantFrom(...STREAMS);
const group = fc.constantFrom('g1', 'g2');

type Op =
  | { kind: 'append'; stream: string; entries: [string, string][] }
  | { kind: 'deliver' | 'noack'; stream: string; group: string; count: number }
  | { kind: 'ack' | 'delete' | 'claim'; stream: string; group: string; pick: number }
  | { kind: 'trim'; stream: string; keep: number }
  | { kind: 'delay'; entries: [string, string][] }
  | { kind: 'undelay'; count: number }
  | { kind: 'group'; stream: string; group: string }
  | { kind: 'recreate'; stream: string };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), stream, entries: fc.array(fc.tuple(headers, enqueuedAt), { minLength: 1, maxLength: 60 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('deliver' as const), stream, group, count: fc.integer({ min: 1, max: 50 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('noack' as const), stream, group, count: fc.integer({ min: 1, max: 10 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constantFrom('ack' as const, 'delete' as const, 'claim' as const), stream, group, pick: fc.integer({ min: 1, max: 25 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim' as const), stream, keep: fc.integer({ min: 0, max: 80 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delay' as const), entries: fc.array(fc.tuple(headers, enqueuedAt), { minLength: 1, maxLength: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('undelay' as const), count: fc.integer({ min: 1, max: 10 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('group' as const), stream, group }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('recreate' as const), stream }) },
);

let serial = 0;
const fields = ([header, at]: [string, string]) => ['id', `t${(serial += 1)}`, 'name', 'n', 'args', '{}', 'headers', header, 'enqueuedAt', at, 'queue', 'q', 'meta', '{}'];

async function ensureGroup(stream: string, group: string, client: Redis = redis): Promise<void> {
  await client.xgroup('CREATE', stream, group, '0', 'MKSTREAM').catch(() => undefined);
}

async function pendingIds(stream: string, group: string, client: Redis): Promise<string[]> {
  const rows = (await client.xpending(stream, group, '-', '+', 1000).catch(() => [])) as [string][];
  return rows.map(([id]) => id);
}

/** One change, made on `client` (the test's own connection, or a fleet's working during a count). */
async function apply(step: Op, client: Redis = redis): Promise<void> {
  switch (step.kind) {
    case 'append': {
      const pipeline = client.pipeline();
      for (const entry of step.entries) pipeline.xadd(step.stream, '*', ...fields(entry));
      await pipeline.exec();
      return;
    }
    case 'deliver':
    case 'noack':
      await ensureGroup(step.stream, step.group, client);
      if (step.kind === 'noack') await client.xreadgroup('GROUP', step.group, 'w1', 'COUNT', step.count, 'NOACK', 'STREAMS', step.stream, '>');
      else await client.xreadgroup('GROUP', step.group, 'w1', 'COUNT', step.count, 'STREAMS', step.stream, '>');
      return;
    case 'ack':
    case 'claim':
    case 'delete': {
      const ids = (await pendingIds(step.stream, step.group, client)).filter((_, i) => i % step.pick === 0);
      if (step.kind === 'delete') {
        const all = (await client.xrange(step.stream, '-', '+')).map(([id]) => id).filter((_, i) => i % step.pick === 1);
        if (all.length > 0) await client.xdel(step.stream, ...all.slice(0, 5));
        if (ids.length > 0) await client.xdel(step.stream, ...ids.slice(0, 3));
      } else if (ids.length > 0) {
        if (step.kind === 'ack') await client.xack(step.stream, step.group, ...ids);
        else await client.xclaim(step.stream, step.group, 'w2', '0', ...ids);
      }
      return;
    }
    case 'trim':
      await client.xtrim(step.stream, 'MAXLEN', step.keep);
      return;
    case 'delay': {
      const pipeline = client.pipeline();
      for (const [header, at] of step.entries) pipeline.zadd(keys.delayed('emails'), serial, `{"id":"d${(serial += 1)}","args":{},"headers":${header},"enqueuedAt":"${at}"}`);
      await pipeline.exec();
      return;
    }
    case 'undelay': {
      // Stem moves due members onto the stream
      const due = await client.zrange(keys.delayed('emails'), '0', String(step.count - 1));
      for (const member of due) {
        await client.zrem(keys.delayed('emails'), member);
        await client.xadd(keys.stream('emails'), '*', ...fields([member.includes('"old"') ? '{"stem-signature-key":"old"}' : '{}', '2026-11-28T13:00:00.000000Z']));
      }
      return;
    }
    case 'group':
      await ensureGroup(step.stream, step.group, client);
      return;
    case 'recreate':
      await client.del(step.stream);
      await client.xadd(step.stream, '*', ...fields(['{"stem-signature-key":"old"}', '2026-11-28T10:00:00.000000Z']));
      await ensureGroup(step.stream, 'g1', client);
      return;
  }
}

/** On an emptied Redis: `emails` with `length` envelopes, every `every`-th signed with the old key, the first `delivered` delivered to g1. */
async function freshStream(length: number, every: number, delivered: number): Promise<string> {
  await redis.flushall();
  const stream = keys.stream('emails');
  await ensureGroup(stream, 'g1');
  await apply({ kind: 'append', stream, entries: Array.from({ length }, (_, i) => [i % every === 0 ? '{"stem-signature-key":"old"}' : '{"stem-signature-key":"new"}', '2026-11-28T10:00:00.000000Z'] as [string, string]) });
  await apply({ kind: 'deliver', stream, group: 'g1', count: delivered });
  return stream;
}

describe('incremental backlog evidence', () => {
  it('equals a full scan after any sequence of changes to the streams and delayed sets', async () => {
    let incremental = 0;
    let counts = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        await redis.flushall();
        for (const stream of STREAMS) await ensureGroup(stream, 'g1');
        const memory = new BacklogMemory();
        await count(memory);
        for (const step of ops) {
          await apply(step);
          const remembered = await count(memory);
          const full = await count();
          counts += 1;
          incremental += STREAMS.length - (remembered.readWhole?.length ?? 0);
          expect(decisive(remembered)).toEqual(decisive(full));
        }
      }),
      { numRuns: Number(process.env.STEM_ROTOR_BACKLOG_RUNS ?? 60) },
    );
    // most counts built on memory: the comparison above is not between two full scans
    expect(incremental).toBeGreaterThan(counts * 2);
  }, 120_000);

  it('equals a full scan once a fleet that kept working during earlier counts has stopped', async () => {
    // a live fleet: what a count reads and what it remembers may straddle appends, deliveries, acks
    // and deletes made while it ran; a later count must still end up exact
    const fleet = server.client(0);
    let concurrentCounts = 0;
    let succeeded = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 6 }), async (rounds) => {
          await redis.flushall();
          for (const stream of STREAMS) await ensureGroup(stream, 'g1');
          const memory = new BacklogMemory();
          for (const during of rounds) {
            const working = (async () => {
              // a worker's command can fail too (a group deleted under it): the fleet goes on
              for (const step of during) await apply(step, fleet).catch(() => undefined);
            })();
            // a count may fail when a stream or group vanishes under it (the gate then reports unknown)
            const [counted] = await Promise.all([count(memory).then(() => true, () => false), working]);
            concurrentCounts += 1;
            if (counted) succeeded += 1;
          }
          expect(decisive(await count(memory))).toEqual(decisive(await count()));
        }),
        { numRuns: Number(process.env.STEM_ROTOR_BACKLOG_RUNS ?? 60) },
      );
      expect(succeeded).toBeGreaterThan(concurrentCounts * 0.8);
    } finally {
      fleet.disconnect();
    }
  }, 120_000);

  it('a stream deleted between finding it and reading it holds nothing; any other failure still fails the count', async () => {
    await redis.flushall();
    await expect(streamInfo(redis, keys.stream('purged'))).resolves.toBeNull();
    await redis.set(keys.stream('odd'), 'a string where a stream should be');
    await expect(streamInfo(redis, keys.stream('odd'))).rejects.toThrow(/WRONGTYPE/);
  });

  it('reads only what was appended when nothing else changed, and forgets a stream that is gone', async () => {
    const stream = await freshStream(200, 4, 80);
    const memory = new BacklogMemory();
    const first = await count(memory);
    expect(first.readWhole).toEqual([{ key: stream, reason: 'not read before' }]);
    expect(first.total).toMatchObject({ scanned: 200, signed: 50 });
    await apply({ kind: 'append', stream, entries: Array.from({ length: 10 }, () => ['{"stem-signature-key":"old"}', '2026-11-28T13:00:00.000000Z'] as [string, string]) });
    const second = await count(memory);
    expect(second.readWhole).toEqual([]);
    expect(second.total).toMatchObject({ signed: 60, signedAfter: 10 });
    // 120 undelivered "new" ones were not read again: scanned counts what was read and what is remembered
    expect(second.total.scanned).toBe(60);
    await redis.del(stream);
    await count(memory);
    expect(memory.streams.size).toBe(0);
  });

  it('a memory kept in the ring state carries over to another process; one that does not read back exactly is ignored', async () => {
    const stream = await freshStream(300, 3, 120);
    const first = new BacklogMemory();
    await count(first);
    // as the state store keeps it: JSON
    const kept: unknown = JSON.parse(JSON.stringify(persistMemory(first, 'k')));
    await apply({ kind: 'append', stream, entries: [['{"stem-signature-key":"old"}', '2026-11-28T13:00:00.000000Z']] });
    await apply({ kind: 'deliver', stream, group: 'g1', count: 50 });
    await apply({ kind: 'ack', stream, group: 'g1', pick: 4 });
    const next = new BacklogMemory();
    restoreMemory(next, kept, 'k');
    const carried = await count(next);
    expect(carried.readWhole).toEqual([]);
    expect(decisive(carried)).toEqual(decisive(await count()));
    // another key, or anything altered, is not built on
    const altered = (from: RegExp, to: string) => JSON.parse(JSON.stringify(kept).replace(from, to)) as unknown;
    for (const [bad, key] of [
      [kept, 'another key'],
      [altered(/=\d+/, '=7'), 'k'], // no such signer
      [altered(/"notable":"\d+-\d+/, '"notable":"x'), 'k'], // not an entry id
      [altered(/"lastId":"[^"]*"/, '"lastId":5'), 'k'],
      ['{"key":"k"', 'k'],
    ] as const) {
      const fresh = new BacklogMemory();
      restoreMemory(fresh, bad, key);
      expect(fresh.streams.size, String(JSON.stringify(bad)).slice(0, 60)).toBe(0);
    }
    // too many remembered entries to keep in the state: nothing is kept
    const big = new BacklogMemory();
    await apply({ kind: 'append', stream, entries: Array.from({ length: PERSISTED_ENTRIES }, () => ['{"stem-signature-key":"old"}', '2026-11-28T10:00:00.000000Z'] as [string, string]) });
    await count(big);
    expect(persistMemory(big, 'k')).toBeNull();
  });

  it('a stream with more consumer groups than it can remember is read whole every time, and counted right', async () => {
    await redis.flushall();
    const stream = keys.stream('fanout');
    for (let group = 0; group < 30; group += 1) await ensureGroup(stream, `g${group}`);
    await apply({ kind: 'append', stream, entries: Array.from({ length: 20 }, () => ['{"stem-signature-key":"old"}', '2026-11-28T10:00:00.000000Z'] as [string, string]) });
    await apply({ kind: 'deliver', stream, group: 'g7', count: 5 });
    const memory = new BacklogMemory();
    for (let round = 0; round < 2; round += 1) {
      const report = await count(memory);
      expect(report.readWhole).toEqual([{ key: stream, reason: 'too many consumer groups' }]);
      expect(decisive(report)).toEqual(decisive(await count()));
      expect(report.total.signed).toBe(20);
    }
    expect(memory.streams.size).toBe(0);
  });
});

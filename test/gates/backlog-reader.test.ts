/** The raw stream reader behind stem-backlog: chunk boundaries, odd headers, holes in pending, TLS + ACL. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { countBacklog } from '../../src/stem/backlog.js';
import { stemKeys } from '../../src/stem/redis-keys.js';
import { RedisServer } from '../helpers/redis-server.js';
import { createTestPki } from '../helpers/tls.js';

const keys = stemKeys('stem');
const AFTER = new Date('2026-11-28T12:00:00.000Z');
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
beforeEach(async () => {
  await redis.flushall();
});

const entry = (headers: string, enqueuedAt = '2026-11-28T10:00:00.000000Z', args = '{}') => ['id', 't', 'name', 'n', 'args', args, 'headers', headers, 'enqueuedAt', enqueuedAt, 'queue', 'q', 'meta', '{}'];
const count = (options: { keyIds?: string[]; batchSize?: number; entriesPerUnit?: number } = {}) =>
  countBacklog(redis, { url: server.url(0), connectTimeout: 2000, commandTimeout: 10_000 }, { namespace: 'stem', controlNamespaces: ['stem'], keyIds: options.keyIds ?? ['old'], after: AFTER, batchSize: options.batchSize ?? 100, entriesPerUnit: options.entriesPerUnit ?? 50_000 });

describe('backlog reader', () => {
  it('counts exactly across many pages and entries larger than a socket chunk', async () => {
    const pipeline = redis.pipeline();
    for (let i = 0; i < 5000; i += 1) {
      const big = i % 500 === 0 ? JSON.stringify({ blob: 'x'.repeat(200_000) }) : '{}';
      pipeline.xadd(keys.stream('q'), '*', ...entry(JSON.stringify({ 'stem-signature': 's', 'stem-signature-key': i % 3 === 0 ? 'old' : 'new' }), i % 7 === 0 ? '2026-11-28T13:00:00.000Z' : '2026-11-28T10:00:00.000Z', big));
    }
    await pipeline.exec();
    const report = await count({ batchSize: 333 });
    const old = Array.from({ length: 5000 }, (_, i) => i).filter((i) => i % 3 === 0);
    expect(report.total).toEqual({ scanned: 5000, signed: old.length, signedAfter: old.filter((i) => i % 7 === 0).length, unsigned: 0, unparseable: 0 });
  });

  it('finds the key id whatever the header order or escapes, and tells unsigned from unparseable', async () => {
    const stream = keys.stream('q');
    await redis.xadd(stream, '*', ...entry('{"a":"x\\"stem-signature-key\\":\\"new\\"","stem-signature-key":"old"}'));
    await redis.xadd(stream, '*', ...entry('{"stem-signature-key":"\\u006fld"}')); // "old", escaped
    await redis.xadd(stream, '*', ...entry('{"stem-signature-key" : "old"}'));
    await redis.xadd(stream, '*', ...entry('{"traceparent":"00-1"}'));
    await redis.xadd(stream, '*', ...entry('{broken'));
    await redis.xadd(stream, '*', 'id', 'no-headers');
    expect((await count()).total).toEqual({ scanned: 6, signed: 3, signedAfter: 0, unsigned: 1, unparseable: 2 });
  });

  it('is not fooled by a header whose name contains stem-signature-key (stem-interop-2 §9 edges)', async () => {
    const stream = keys.stream('q');
    await redis.xadd(stream, '*', ...entry('{"x-stem-signature-key":"old","stem-signature-key":"new"}'));
    await redis.xadd(stream, '*', ...entry('{"stem-signature-key-legacy":"old","stem-signature-key":"new"}'));
    await redis.xadd(stream, '*', ...entry('{"x-stem-signature-key":"new","stem-signature-key":"old"}'));
    await redis.xadd(stream, '*', ...entry('{"x-stem-signature-key":"old"}'));
    expect((await count()).total).toEqual({ scanned: 4, signed: 1, signedAfter: 0, unsigned: 1, unparseable: 0 });
  });

  it('a queue named like a priority stream (emails:p3) is read through its own group; two groups on one stream count each entry once', async () => {
    const stream = keys.stream('emails', 3); // also the priority-0 stream of a queue named "emails:p3"
    for (let i = 0; i < 4; i += 1) await redis.xadd(stream, '*', ...entry('{"stem-signature-key":"old"}'));
    await redis.xgroup('CREATE', stream, keys.group('emails:p3'), '0');
    const read = (await redis.xreadgroup('GROUP', keys.group('emails:p3'), 'w', 'COUNT', 10, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
    await redis.xack(stream, keys.group('emails:p3'), ...(read[0]?.[1] ?? []).map(([id]) => id));
    expect((await count()).total).toMatchObject({ scanned: 0, signed: 0 });
    await redis.xgroup('CREATE', stream, keys.group('emails'), '0'); // queue "emails", priority 3: nothing received yet
    expect((await count()).total).toMatchObject({ scanned: 4, signed: 4 });
  });

  it('reads pending entries across acknowledged and deleted holes, and skips acknowledged ones', async () => {
    const stream = keys.stream('q');
    const group = keys.group('q');
    const ids: string[] = [];
    for (let i = 0; i < 300; i += 1) ids.push((await redis.xadd(stream, '*', ...entry('{"stem-signature-key":"old"}'))) as string);
    await redis.xgroup('CREATE', stream, group, '0');
    await redis.xreadgroup('GROUP', group, 'w', 'COUNT', 250, 'STREAMS', stream, '>');
    for (let i = 0; i < 250; i += 3) await redis.xack(stream, group, ids[i] as string); // holes
    await redis.xdel(stream, ids[9] as string, ids[11] as string); // 9 was acknowledged; 11 is pending but gone
    const report = await count({ batchSize: 40 });
    const pending = report.bySource.find((source) => source.source === 'pending');
    const undelivered = report.bySource.find((source) => source.source === 'stream');
    const stillPending = Array.from({ length: 250 }, (_, i) => i).filter((i) => i % 3 !== 0 && i !== 11).length;
    expect(pending?.count.signed).toBe(stillPending);
    expect(undelivered?.count.signed).toBe(50);
  });

  it('splits a big stream by id range across connections without losing or double-counting an entry', async () => {
    const stream = keys.stream('big');
    const group = keys.group('big');
    for (let round = 0; round < 6; round += 1) {
      const pipeline = redis.pipeline();
      for (let i = 0; i < 500; i += 1) pipeline.xadd(stream, `${1_800_000_000_000 + round * 1000 + i}-${i % 3}`, ...entry(`{"stem-signature-key":"${i % 2 ? 'old' : 'new'}"}`));
      await pipeline.exec();
    }
    await redis.xgroup('CREATE', stream, group, '0');
    await redis.xreadgroup('GROUP', group, 'w', 'COUNT', 1200, 'STREAMS', stream, '>');
    const whole = await count({ batchSize: 64 });
    const split = await count({ batchSize: 64, entriesPerUnit: 150 });
    expect(split.total).toEqual(whole.total);
    expect(split.total).toMatchObject({ scanned: 3000, signed: 1500 });
    const sources = (report: typeof split) => report.bySource.filter((s) => s.count.scanned > 0).reduce<Record<string, number>>((acc, s) => ({ ...acc, [s.source]: (acc[s.source] ?? 0) + s.count.scanned }), {});
    expect(sources(split)).toEqual({ stream: 1800, pending: 1200 });
  });

  it('splits a big delayed set by rank across connections without losing or double-counting a member', async () => {
    const pipeline = redis.pipeline();
    for (let i = 0; i < 1000; i += 1) {
      pipeline.zadd(keys.delayed('later'), 1_800_000_000_000 + i, JSON.stringify({ id: `d${i}`, args: { n: i }, headers: { 'stem-signature-key': i % 4 === 0 ? 'old' : 'new' }, enqueuedAt: '2026-11-28T13:00:00.000Z' }));
    }
    await pipeline.exec();
    const whole = await count({ batchSize: 64 });
    const split = await count({ batchSize: 64, entriesPerUnit: 150 });
    expect(split.total).toEqual(whole.total);
    expect(split.total).toMatchObject({ scanned: 1000, signed: 250, signedAfter: 250 });
  });

  it('a stream without a consumer group is all undelivered; delayed members are decoded whole', async () => {
    await redis.xadd(keys.stream('fresh'), '*', ...entry('{"stem-signature-key":"old"}'));
    await redis.zadd(keys.delayed('q'), 1, JSON.stringify({ args: { headers: { 'stem-signature-key': 'new' } }, headers: { 'stem-signature-key': 'old' }, enqueuedAt: '2026-11-28T13:00:00.000Z' }));
    await redis.zadd(keys.delayed('q'), 2, JSON.stringify({ args: { headers: { 'stem-signature-key': 'old' } }, headers: { 'stem-signature-key': 'new' } }));
    await redis.zadd(keys.delayed('q'), 3, 'not json');
    const report = await count();
    expect(report.total).toEqual({ scanned: 4, signed: 2, signedAfter: 1, unsigned: 0, unparseable: 1 });
  });
});

describe('backlog reader over TLS with an ACL user', () => {
  it('authenticates and reads like the plain connection; a wrong password fails', async () => {
    const pki = createTestPki();
    const secure = await new RedisServer(['--tls-cert-file', pki.serverCert, '--tls-key-file', pki.serverKey, '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', 'no']).start();
    const { default: Redis } = (await import('ioredis')) as unknown as { default: typeof import('ioredis').Redis };
    const { readFileSync } = await import('node:fs');
    const admin = new Redis({ host: '127.0.0.1', port: secure.port, tls: { ca: readFileSync(pki.ca) } });
    await admin.acl('SETUSER', 'rotor', 'on', '>pw', '~*', '+@all');
    await admin.xadd(keys.stream('q'), '*', ...entry('{"stem-signature-key":"old"}'));
    const endpoint = { url: `rediss://127.0.0.1:${secure.port}/0`, username: 'rotor', passwordEnv: 'TEST_BACKLOG_PW', tls: { ca: pki.ca }, connectTimeout: 2000, commandTimeout: 5000 };
    process.env.TEST_BACKLOG_PW = 'pw';
    const report = await countBacklog(admin, endpoint, { namespace: 'stem', controlNamespaces: ['stem'], keyIds: ['old'], after: AFTER, batchSize: 10 });
    expect(report.total.signed).toBe(1);
    process.env.TEST_BACKLOG_PW = 'wrong';
    await expect(countBacklog(admin, endpoint, { namespace: 'stem', controlNamespaces: ['stem'], keyIds: ['old'], after: AFTER, batchSize: 10 })).rejects.toThrow(/AUTH failed/);
    admin.disconnect();
    await secure.stop();
  });
});

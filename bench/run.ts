/**
 * Benchmarks (SPEC §8). Prints figures, each beside its limit and the ceiling it is measured against
 * in the same run; asserts nothing. `--only NAME` runs the benchmark that prints figure NAME,
 * `--json` prints one JSON line per figure: {"name", "value", "unit"}. Child processes run without
 * NODE_EXTRA_CA_CERTS and NODE_OPTIONS: a user's Node start carries neither, and both slow every start.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { BacklogMemory, countBacklog } from '../src/stem/backlog.js';
import type { RedisEndpoint } from '../src/endpoints/schema.js';
import { revokeFanout } from './fanout.js';
import { connectRedis } from '../src/endpoints/redis.js';
import { drainPages } from './drain.js';
import type { Redis } from 'ioredis';
import { connectSql } from '../src/stem/sql.js';
import { sqlBacklog } from '../src/stem/sql-evidence.js';
import { stemKeys } from '../src/stem/redis-keys.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly detail?: Record<string, number>;
  /** The target, as printed beside the figure. */
  readonly limit?: string;
}

const BIN = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));

const CHILD_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_EXTRA_CA_CERTS' && name !== 'NODE_OPTIONS'));

function wallMs(args: readonly string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: CHILD_ENV });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * `stem-rotor status demo` on the local example, beside a bare `node -e ''` and beside the floor — a
 * program that only reads the config and one env file — interleaved in one run.
 */
function statusColdStart(): Figure[] {
  const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-bench-'));
  try {
    wallMs([BIN, 'init', '--dir', dir]);
    const config = join(dir, 'stem-rotor.yaml');
    const status = [BIN, 'status', 'demo', '--config', config];
    const floor = ['-e', `const { readFileSync } = require('node:fs'); readFileSync(${JSON.stringify(config)}, 'utf8'); readFileSync(${JSON.stringify(join(dir, 'producers.env'))}, 'utf8');`];
    for (let i = 0; i < 3; i += 1) wallMs(status); // warm the file cache
    const rotor: number[] = [];
    const bare: number[] = [];
    const floors: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      bare.push(wallMs(['-e', '']));
      floors.push(wallMs(floor));
      rotor.push(wallMs(status));
    }
    const node = median(bare);
    const times = (values: number[]) => Number((median(values) / node).toFixed(3));
    return [
      { name: 'status-floor', value: times(floors), unit: "x node -e ''", detail: { floorMedianMs: Number(median(floors).toFixed(1)), nodeMedianMs: Number(node.toFixed(1)) } },
      { name: 'status-cold-start', value: times(rotor), unit: "x node -e ''", limit: '<= 1.5', detail: { statusMedianMs: Number(median(rotor).toFixed(1)), nodeMedianMs: Number(node.toFixed(1)) } },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway redis-server on a free port, for benchmarks that need Stem's Redis. */
async function withRedis<T>(work: (url: string, port: number) => Promise<T>): Promise<T> {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-bench-redis-'));
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  try {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      try {
        const probe = await connectRedis({ url: `redis://127.0.0.1:${port}/0`, connectTimeout: 1000, commandTimeout: 60_000 }, 'bench');
        probe.disconnect();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return await work(`redis://127.0.0.1:${port}/0`, port);
  } finally {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const OLD_KEY = 'bench-20260101-0001';
const BACKLOG_OPTIONS = { namespace: 'stem', controlNamespaces: ['stem'], keyIds: [OLD_KEY], after: new Date('2026-11-28T01:00:00.000Z'), batchSize: 2000 };
const signatureHeaders = (i: number) => ({ 'stem-signature': 'x'.repeat(43) + '=', 'stem-signature-key': i % 10 === 0 ? OLD_KEY : 'bench-20261128-0002' });

/** Stream entry fields as Stem's Redis broker writes them (stem-interop §3). */
function entryFields(i: number, queue: string): string[] {
  return ['id', `task-${i}`, 'name', 'bench.task', 'args', `{"n":${i}}`, 'headers', JSON.stringify(signatureHeaders(i)), 'enqueuedAt', '2026-11-28T00:00:00.000000Z', 'notBefore', '', 'priority', '0', 'attempt', '0', 'maxRetries', '3', 'visibilityTimeout', '', 'queue', queue, 'meta', '{}'];
}

/**
 * A backlog of `per` × 5 envelopes in Stem's formats: undelivered entries in three queues (one a
 * priority stream), `per` delivered and pending, `per` delayed members; one in ten signed with the
 * old key.
 */
async function seedBacklog(redis: Redis, per: number): Promise<{ streams: string[]; delayed: string[] }> {
  const keys = stemKeys('stem');
  const seed = async (count: number, add: (pipeline: ReturnType<Redis['pipeline']>, i: number) => void) => {
    for (let start = 0; start < count; start += 10_000) {
      const pipeline = redis.pipeline();
      for (let i = start; i < Math.min(count, start + 10_000); i += 1) add(pipeline, i);
      await pipeline.exec();
    }
  };
  const streams = [keys.stream('emails'), keys.stream('emails', 5), keys.stream('reports'), keys.stream('billing')];
  for (const stream of streams) await seed(per, (p, i) => p.xadd(stream, '*', ...entryFields(i, stream.split(':')[2] as string)));
  await redis.xgroup('CREATE', keys.stream('billing'), keys.group('billing'), '0');
  for (let delivered = 0; delivered < per; delivered += 20_000) {
    await redis.xreadgroup('GROUP', keys.group('billing'), 'bench-worker', 'COUNT', 20_000, 'STREAMS', keys.stream('billing'), '>');
  }
  await seed(per, (p, i) => {
    const envelope = { id: `delayed-${i}`, name: 'bench.task', args: { n: i }, headers: signatureHeaders(i), enqueuedAt: '2026-11-28T00:00:00.000Z', notBefore: '2026-11-29T00:00:00.000Z', priority: 0, attempt: 1, maxRetries: 3, visibilityTimeout: null, queue: 'emails', meta: {} };
    p.zadd(keys.delayed('emails'), 1_800_000_000_000 + i, JSON.stringify(envelope));
  });
  return { streams, delayed: [keys.delayed('emails')] };
}

/** Runs `work` while sampling this process's RSS; returns its result, seconds and RSS growth (MB). */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number; rssGrowthMb: number }> {
  global.gc?.();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  const started = process.hrtime.bigint();
  try {
    const result = await work();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { result, seconds, rssGrowthMb: Number(((Math.max(peak, process.memoryUsage.rss()) - baseline) / 1024 / 1024).toFixed(1)) };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * `backlog-rescan`: a count that builds on a first one (BacklogMemory, as the gate does between
 * passes of `run --interval`) after 10,000 envelopes were appended to a queue.
 */
async function backlogRescan(redis: Redis, endpoint: RedisEndpoint, stream: string, envelopes: number): Promise<Figure[]> {
  const memory = new BacklogMemory();
  const first = await measured(() => countBacklog(redis, endpoint, { ...BACKLOG_OPTIONS, memory }));
  const pipeline = redis.pipeline();
  for (let i = 0; i < 10_000; i += 1) pipeline.xadd(stream, '*', ...entryFields(envelopes + i, 'emails'));
  await pipeline.exec();
  const again = await measured(() => countBacklog(redis, endpoint, { ...BACKLOG_OPTIONS, memory }));
  const { total } = again.result;
  if (total.signed !== envelopes / 10 + 1000) throw new Error(`unexpected counts after the rescan ${JSON.stringify(total)}`);
  // The same again with the delayed set out of sight (RENAME is O(1)): a sorted set has no "added
  // since", so it is read whole every time; this separates its cost from the streams'.
  const delayed = stemKeys('stem').delayed('emails');
  await redis.rename(delayed, 'bench:hidden-delayed');
  const more = redis.pipeline();
  for (let i = 0; i < 10_000; i += 1) more.xadd(stream, '*', ...entryFields(envelopes + 10_000 + i, 'emails'));
  await more.exec();
  const streamsOnly = await measured(() => countBacklog(redis, endpoint, { ...BACKLOG_OPTIONS, memory }));
  await redis.rename('bench:hidden-delayed', delayed);
  return [
    { name: 'backlog-rescan', value: Number(again.seconds.toFixed(3)), unit: 's', limit: '< 0.5', detail: { firstCountSeconds: Number(first.seconds.toFixed(2)), memoryRssGrowthMb: first.rssGrowthMb, streamsReadWhole: again.result.readWhole?.length ?? -1 } },
    { name: 'backlog-rescan-streams', value: Number(streamsOnly.seconds.toFixed(3)), unit: 's', limit: '< 0.5 (the same without the delayed set)' },
  ];
}

/**
 * `stem-backlog` scan beside its ceiling (`backlog-drain`: the same pages read and thrown away), at
 * `per` × 5 envelopes; the faster of two runs of each.
 */
async function backlogScanAt(per: number, suffix: string, withRescan = false): Promise<Figure[]> {
  return withRedis(async (url, port) => {
    const endpoint = { url, connectTimeout: 5000, commandTimeout: 600_000 };
    const redis = await connectRedis(endpoint, 'bench');
    try {
      const { streams: keys, delayed } = await seedBacklog(redis, per);
      const streams = await Promise.all(
        keys.map(async (key) => {
          const [first] = (await redis.xrange(key, '-', '+', 'COUNT', 1)) as [string, string[]][];
          const [last] = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
          return { key, firstId: first?.[0] ?? '-', lastId: last?.[0] ?? '+', length: await redis.xlen(key) };
        }),
      );
      const zsets = await Promise.all(delayed.map(async (key) => ({ key, size: await redis.zcard(key) })));
      const envelopes = per * 5;
      let drain = Number.POSITIVE_INFINITY;
      let scan = { seconds: Number.POSITIVE_INFINITY, rssGrowthMb: 0 };
      for (let round = 0; round < 2; round += 1) {
        const drained = await measured(() => drainPages(port, streams, zsets, BACKLOG_OPTIONS.batchSize));
        if (drained.result !== envelopes) throw new Error(`the drain read ${drained.result} of ${envelopes}`);
        drain = Math.min(drain, drained.seconds);
        const scanned = await measured(() => countBacklog(redis, endpoint, BACKLOG_OPTIONS));
        const { total } = scanned.result;
        if (total.scanned !== envelopes || total.signed !== envelopes / 10) throw new Error(`unexpected counts ${JSON.stringify(total)}`);
        if (scanned.seconds < scan.seconds) scan = scanned;
      }
      const rescan = withRescan ? await backlogRescan(redis, endpoint, streams[0]?.key as string, envelopes) : [];
      return [
        ...rescan,
        { name: `backlog-drain${suffix}`, value: Math.round(envelopes / drain), unit: 'envelopes/s', detail: { seconds: Number(drain.toFixed(2)), envelopes } },
        { name: `backlog-scan${suffix}`, value: Math.round(envelopes / scan.seconds), unit: 'envelopes/s', detail: { seconds: Number(scan.seconds.toFixed(2)), envelopes } },
        { name: `backlog-scan-vs-drain${suffix}`, value: Number((drain / scan.seconds).toFixed(3)), unit: 'x backlog-drain', limit: '>= 0.7' },
        { name: `backlog-scan-rss${suffix}`, value: scan.rssGrowthMb, unit: 'MB', limit: '< 100' },
      ];
    } finally {
      redis.disconnect();
    }
  });
}

/**
 * `stem-backlog` on Stem's PostgreSQL broker: 1,000,000 rows in `stem_queue_jobs` (queued, delayed,
 * in flight; one in ten signed with the key being dropped), counted by the gate's query, in a
 * database of its own on the machine's server.
 */
async function backlogScanPostgres(): Promise<Figure[]> {
  const { default: pg } = await import('pg');
  const name = `stem_rotor_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  try {
    const seeder = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${name}` });
    await seeder.connect();
    await seeder.query(`CREATE TABLE stem_queue_jobs (id TEXT PRIMARY KEY, namespace TEXT NOT NULL DEFAULT 'stem', queue TEXT NOT NULL, envelope JSONB NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
      max_retries INTEGER NOT NULL DEFAULT 0, priority INTEGER NOT NULL DEFAULT 0, not_before TIMESTAMPTZ, locked_at TIMESTAMPTZ, locked_until TIMESTAMPTZ, locked_by TEXT,
      created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP)`);
    await seeder.query(`INSERT INTO stem_queue_jobs (id, queue, envelope, not_before, locked_until, locked_by)
      SELECT 'task-' || i, (ARRAY['emails','reports','billing'])[1 + i % 3],
        jsonb_build_object('id', 'task-' || i, 'name', 'bench.task', 'args', jsonb_build_object('n', i),
          'headers', jsonb_build_object('stem-signature', repeat('x', 43) || '=', 'stem-signature-key', CASE WHEN i % 10 = 0 THEN 'bench-20260101-0001' ELSE 'bench-20261128-0002' END),
          'enqueuedAt', '2026-11-28T00:00:00.000000Z', 'notBefore', NULL, 'priority', 0, 'attempt', 0, 'maxRetries', 3, 'visibilityTimeout', NULL, 'queue', 'emails', 'meta', '{}'::jsonb),
        CASE WHEN i % 5 = 1 THEN now() + interval '1 day' END, CASE WHEN i % 5 = 2 THEN now() + interval '5 minutes' END, CASE WHEN i % 5 = 2 THEN 'emails::default::w1::x' END
      FROM generate_series(1, 1000000) AS i`);
    await seeder.query(`CREATE TABLE stem_broadcast_messages (id TEXT PRIMARY KEY, namespace TEXT NOT NULL DEFAULT 'stem', channel TEXT NOT NULL, envelope JSONB NOT NULL, delivery TEXT NOT NULL DEFAULT 'at-least-once', created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ);
      CREATE TABLE stem_broadcast_ack (message_id TEXT NOT NULL REFERENCES stem_broadcast_messages(id) ON DELETE CASCADE, worker_id TEXT NOT NULL, namespace TEXT NOT NULL DEFAULT 'stem', acknowledged_at TIMESTAMPTZ, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, PRIMARY KEY (message_id, worker_id))`);
    await seeder.query('VACUUM ANALYZE stem_queue_jobs');
    await seeder.end();
    const sql = await connectSql({ url: `postgres://postgres@127.0.0.1:5432/${name}`, connectTimeout: 5000, commandTimeout: 600_000 }, 'bench');
    try {
      const options = { namespace: 'stem', keyIds: ['bench-20260101-0001'], after: new Date('2026-11-28T01:00:00.000Z') };
      await sqlBacklog(sql, options); // warm the cache, as a gate evaluated every interval finds it
      const started = process.hrtime.bigint();
      const report = await sqlBacklog(sql, options);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (report.total.scanned !== 1_000_000 || report.total.signed !== 100_000) throw new Error(`unexpected counts ${JSON.stringify(report.total)}`);
      return [{ name: 'backlog-scan-postgres', value: Math.round(report.total.scanned / seconds), unit: 'rows/s', detail: { seconds: Number(seconds.toFixed(2)), scanned: report.total.scanned, signedWithOldKey: report.total.signed } }];
    } finally {
      await sql.close();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** Seconds of `run --once` over `count` idle rings (one dotenv target each) on the Redis store, through the CLI. */
async function runOnceSeconds(url: string, count: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-bench-rings-'));
  try {
    const rings: Record<string, unknown> = {};
    for (let i = 0; i < count; i += 1) {
      const id = `r${i}-20261128-0001`;
      writeFileSync(join(dir, `r${i}.env`), `STEM_SIGNING_KEYS=${id}:${randomBytes(32).toString('base64')}\nSTEM_SIGNING_ACTIVE_KEY=${id}\n`);
      rings[`r${i}`] = { keyIdPrefix: `r${i}-`, policy: { maxAge: '3650d' }, targets: [{ name: 'all', provider: 'dotenv', path: `r${i}.env` }] };
    }
    const config = join(dir, 'stem-rotor.json');
    writeFileSync(config, JSON.stringify({ store: { type: 'redis', url, prefix: `bench${count}` }, rings }));
    wallMs([BIN, 'run', '--once', '--config', config]); // first pass records each ring; warms the file cache
    return median([0, 1, 2].map(() => wallMs([BIN, 'run', '--once', '--config', config]))) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runOnceThousandRings(): Promise<Figure[]> {
  return withRedis(async (url) => [{ name: 'run-once-1000-rings', value: Number((await runOnceSeconds(url, 1000)).toFixed(3)), unit: 's' }]);
}

/**
 * 10,000 rings beside 1,000 and beside one ring in the same run. One ring's pass is the fixed cost
 * (start-up, config, store); linear means a ring costs as much on top of it at 10,000 as at 1,000
 * (a pass that looked rings up in a list would cost ~10× as much per ring; warm-up makes the first thousand dearer).
 */
async function runOnceTenThousandRings(): Promise<Figure[]> {
  return withRedis(async (url) => {
    const one = await runOnceSeconds(url, 1);
    const thousand = await runOnceSeconds(url, 1000);
    const tenThousand = await runOnceSeconds(url, 10_000);
    const perRingUs = (seconds: number, rings: number) => ((seconds - one) / (rings - 1)) * 1e6;
    return [
      { name: 'run-once-10000-rings', value: Number(tenThousand.toFixed(3)), unit: 's', limit: '<= 2' },
      {
        name: 'run-once-per-ring-10000-vs-1000',
        value: Number((perRingUs(tenThousand, 10_000) / perRingUs(thousand, 1000)).toFixed(2)),
        unit: 'x the cost of a ring among 1,000',
        limit: '<= 1.2 (linear; a ring looked up in a list would cost ~10x)',
        detail: { oneRingSeconds: Number(one.toFixed(3)), thousandRingsSeconds: Number(thousand.toFixed(3)), perRingUsAt1000: Math.round(perRingUs(thousand, 1000)), perRingUsAt10000: Math.round(perRingUs(tenThousand, 10_000)) },
      },
    ];
  });
}

/** Benchmarks by name, with the names of the figures each prints (for `--only`). */
const BENCHMARKS: Record<string, { readonly figures: readonly string[]; readonly run: () => Figure[] | Promise<Figure[]> }> = {
  'status-cold-start': { figures: ['status-floor'], run: statusColdStart },
  'backlog-scan': { figures: ['backlog-drain', 'backlog-scan-vs-drain', 'backlog-scan-rss'], run: () => backlogScanAt(200_000, '') },
  'backlog-scan-3m': { figures: ['backlog-rescan', 'backlog-rescan-streams', 'backlog-drain-3m', 'backlog-scan-vs-drain-3m', 'backlog-scan-rss-3m'], run: () => backlogScanAt(600_000, '-3m', true) },
  'backlog-scan-postgres': { figures: [], run: backlogScanPostgres },
  'revoke-fanout': { figures: [], run: revokeFanout },
  'run-once-1000-rings': { figures: [], run: runOnceThousandRings },
  'run-once-10000-rings': { figures: ['run-once-per-ring-10000-vs-1000'], run: runOnceTenThousandRings },
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? args[onlyIndex + 1] : undefined;
  const chosen = Object.entries(BENCHMARKS).filter(([name, benchmark]) => only === undefined || name === only || benchmark.figures.includes(only));
  if (chosen.length === 0) {
    process.stderr.write(`unknown benchmark "${only}" (have: ${Object.entries(BENCHMARKS).flatMap(([name, b]) => [name, ...b.figures]).join(', ')})\n`);
    process.exitCode = 2;
    return;
  }
  for (const [, benchmark] of chosen) {
    for (const figure of await benchmark.run()) {
      if (json) process.stdout.write(`${JSON.stringify({ name: figure.name, value: figure.value, unit: figure.unit })}\n`);
      else process.stdout.write(`${figure.name}: ${figure.value} ${figure.unit}${figure.limit ? ` (limit ${figure.limit})` : ''}${figure.detail ? ` ${JSON.stringify(figure.detail)}` : ''}\n`);
    }
  }
}

await main();

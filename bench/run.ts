/**
 * Benchmarks (SPEC §8). Prints figures; asserts nothing. `--only NAME` runs one, `--json` prints one
 * JSON line per figure: {"name", "value", "unit"}.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { countBacklog } from '../src/stem/backlog.js';
import { revokeFanout } from './fanout.js';
import { connectRedis } from '../src/endpoints/redis.js';
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
}

const BIN = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));

function wallMs(args: readonly string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** `stem-rotor status demo` on the local example vs a bare `node -e ''`, interleaved in one run. */
function statusColdStart(): Figure[] {
  const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-bench-'));
  try {
    wallMs([BIN, 'init', '--dir', dir]);
    const status = [BIN, 'status', 'demo', '--config', join(dir, 'stem-rotor.yaml')];
    for (let i = 0; i < 3; i += 1) wallMs(status); // warm the file cache
    const rotor: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      bare.push(wallMs(['-e', '']));
      rotor.push(wallMs(status));
    }
    const ratio = median(rotor) / median(bare);
    return [{ name: 'status-cold-start', value: Number(ratio.toFixed(3)), unit: "x node -e ''", detail: { statusMedianMs: Number(median(rotor).toFixed(1)), nodeMedianMs: Number(median(bare).toFixed(1)) } }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway redis-server on a free port, for benchmarks that need Stem's Redis. */
async function withRedis<T>(work: (url: string) => Promise<T>): Promise<T> {
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
    return await work(`redis://127.0.0.1:${port}/0`);
  } finally {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `stem-backlog` scan over 1,000,000 envelopes in Stem's formats: 600k undelivered stream entries
 * (three queues, one a priority stream), 200k pending entries, 200k delayed members.
 */
async function backlogScan(): Promise<Figure[]> {
  return withRedis(async (url) => {
    const redis = await connectRedis({ url, connectTimeout: 5000, commandTimeout: 600_000 }, 'bench');
    const keys = stemKeys('stem');
    const old = 'bench-20260101-0001';
    const header = (keyId: string) => JSON.stringify({ 'stem-signature': 'x'.repeat(43) + '=', 'stem-signature-key': keyId });
    const fields = (i: number, queue: string) => ['id', `task-${i}`, 'name', 'bench.task', 'args', `{"n":${i}}`, 'headers', header(i % 10 === 0 ? old : 'bench-20261128-0002'), 'enqueuedAt', '2026-11-28T00:00:00.000000Z', 'notBefore', '', 'priority', '0', 'attempt', '0', 'maxRetries', '3', 'visibilityTimeout', '', 'queue', queue, 'meta', '{}'];
    const seed = async (count: number, add: (pipeline: ReturnType<typeof redis.pipeline>, i: number) => void) => {
      for (let start = 0; start < count; start += 10_000) {
        const pipeline = redis.pipeline();
        for (let i = start; i < Math.min(count, start + 10_000); i += 1) add(pipeline, i);
        await pipeline.exec();
      }
    };
    await seed(200_000, (p, i) => p.xadd(keys.stream('emails'), '*', ...fields(i, 'emails')));
    await seed(200_000, (p, i) => p.xadd(keys.stream('emails', 5), '*', ...fields(i, 'emails')));
    await seed(200_000, (p, i) => p.xadd(keys.stream('reports'), '*', ...fields(i, 'reports')));
    await seed(200_000, (p, i) => p.xadd(keys.stream('billing'), '*', ...fields(i, 'billing')));
    await redis.xgroup('CREATE', keys.stream('billing'), keys.group('billing'), '0');
    for (let delivered = 0; delivered < 200_000; delivered += 20_000) {
      await redis.xreadgroup('GROUP', keys.group('billing'), 'bench-worker', 'COUNT', 20_000, 'STREAMS', keys.stream('billing'), '>');
    }
    await seed(200_000, (p, i) => {
      const envelope = { id: `delayed-${i}`, name: 'bench.task', args: { n: i }, headers: JSON.parse(header(i % 10 === 0 ? old : 'bench-20261128-0002')), enqueuedAt: '2026-11-28T00:00:00.000Z', notBefore: '2026-11-29T00:00:00.000Z', priority: 0, attempt: 1, maxRetries: 3, visibilityTimeout: null, queue: 'emails', meta: {} };
      p.zadd(keys.delayed('emails'), 1_800_000_000_000 + i, JSON.stringify(envelope));
    });

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const started = process.hrtime.bigint();
    const report = await countBacklog(redis, { url, connectTimeout: 5000, commandTimeout: 600_000 }, { namespace: 'stem', controlNamespaces: ['stem'], keyIds: [old], after: new Date('2026-11-28T01:00:00.000Z'), batchSize: 2000 });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    redis.disconnect();
    if (report.total.scanned !== 1_000_000 || report.total.signed !== 100_000) throw new Error(`unexpected counts ${JSON.stringify(report.total)}`);
    return [
      { name: 'backlog-scan', value: Math.round(report.total.scanned / seconds), unit: 'envelopes/s', detail: { seconds: Number(seconds.toFixed(2)), scanned: report.total.scanned, signedWithOldKey: report.total.signed } },
      { name: 'backlog-scan-rss', value: Number(((peak - baseline) / 1024 / 1024).toFixed(1)), unit: 'MB' },
    ];
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

/** `run --once` over 1,000 idle rings (one dotenv target each) on the Redis store, through the CLI. */
async function runOnceThousandRings(): Promise<Figure[]> {
  return withRedis(async (url) => {
    const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-bench-rings-'));
    try {
      const rings: Record<string, unknown> = {};
      for (let i = 0; i < 1000; i += 1) {
        const id = `r${i}-20261128-0001`;
        writeFileSync(join(dir, `r${i}.env`), `STEM_SIGNING_KEYS=${id}:${randomBytes(32).toString('base64')}\nSTEM_SIGNING_ACTIVE_KEY=${id}\n`);
        rings[`r${i}`] = { keyIdPrefix: `r${i}-`, policy: { maxAge: '3650d' }, targets: [{ name: 'all', provider: 'dotenv', path: `r${i}.env` }] };
      }
      const config = join(dir, 'stem-rotor.json');
      writeFileSync(config, JSON.stringify({ store: { type: 'redis', url }, rings }));
      wallMs([BIN, 'run', '--once', '--config', config]); // warm the file cache
      const runs = [0, 1, 2].map(() => wallMs([BIN, 'run', '--once', '--config', config]));
      return [{ name: 'run-once-1000-rings', value: Number((median(runs) / 1000).toFixed(3)), unit: 's' }];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

const BENCHMARKS: Record<string, () => Figure[] | Promise<Figure[]>> = {
  'status-cold-start': statusColdStart,
  'backlog-scan': backlogScan,
  'backlog-scan-postgres': backlogScanPostgres,
  'revoke-fanout': revokeFanout,
  'run-once-1000-rings': runOnceThousandRings,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? args[onlyIndex + 1] : undefined;
  if (only !== undefined && !(only in BENCHMARKS)) {
    process.stderr.write(`unknown benchmark "${only}" (have: ${Object.keys(BENCHMARKS).join(', ')})\n`);
    process.exitCode = 2;
    return;
  }
  for (const [name, run] of Object.entries(BENCHMARKS)) {
    if (only !== undefined && name !== only) continue;
    for (const figure of await run()) {
      if (json) process.stdout.write(`${JSON.stringify({ name: figure.name, value: figure.value, unit: figure.unit })}\n`);
      else process.stdout.write(`${figure.name}: ${figure.value} ${figure.unit}${figure.detail ? ` ${JSON.stringify(figure.detail)}` : ''}\n`);
    }
  }
}

await main();

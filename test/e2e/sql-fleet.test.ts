/**
 * Simulated Stem fleets on PostgreSQL (the machine's server, a database of this file's own, read by
 * the rotor as a role holding only examples/postgres/grants.sql) and on a SQLite file, rotated only by
 * repeated `stem-rotor run --once` of the built binary with autoAdvance.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import type { Envelope } from '../../src/stem/envelope.js';
import { parseStemJson } from '../../src/stem/json.js';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';
import { loadEnvFile, newEnvelope } from '../helpers/stem-fleet.js';
import { PostgresDatabase, SqliteDatabase, SqlWorker, StemSqlFleet } from '../helpers/stem-sql.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const GRANTS = fileURLToPath(new URL('../../examples/postgres/grants.sql', import.meta.url));

type Store = PostgresDatabase | SqliteDatabase;
const stores: Record<'postgres' | 'sqlite', { db?: Store; url?: string }> = { postgres: {}, sqlite: {} };

beforeAll(async () => {
  const postgres = await PostgresDatabase.create('stem_rotor_sqlfleet');
  // the rotor reads as a role with exactly the example's privileges
  const reader = `${postgres.name}_reader`;
  await postgres.run(readFileSync(GRANTS, 'utf8').replaceAll('stem_rotor', reader).replace('ON DATABASE stem', `ON DATABASE ${postgres.name}`));
  stores.postgres = { db: postgres, url: `postgres://${reader}@127.0.0.1:5432/${postgres.name}` };
  const sqlite = new SqliteDatabase();
  stores.sqlite = { db: sqlite, url: sqlite.url };
});
afterAll(async () => {
  await stores.postgres.db?.drop();
  await stores.sqlite.db?.drop();
});

describe.each(['postgres', 'sqlite'] as const)('a Stem fleet on %s rotated by run --once', (kind) => {
  beforeEach(async () => {
    await stores[kind].db?.reset();
  });

  function setup(signers: Record<string, unknown> = {}) {
    const store = stores[kind];
    const db = store.db as Store;
    const dir = tempDir('stem-rotor-sqlfleet-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const workersGate = { type: 'stem-workers', minWorkers: 2, clockSkew: '300ms', startupAllowance: '10ms' };
    const config = join(dir, 'stem-rotor.json');
    writeFileSync(
      config,
      JSON.stringify({
        version: 1,
        store: { type: 'file', dir: 'state' },
        rings: {
          demo: {
            algorithm: 'hmac-sha256',
            keyIdPrefix: 'demo-',
            policy: { maxAge: '1ms', propagate: '1s', drain: '1s', autoAdvance: true },
            stem: { broker: { url: store.url } },
            gates: {
              beforeActivate: [{ type: 'soak' }, workersGate, { type: 'stem-dlq', clockSkew: '1s' }],
              beforeDrop: [{ type: 'soak' }, workersGate, { type: 'stem-signers', grace: '200ms', ...signers }, { type: 'stem-backlog' }, { type: 'stem-dlq', clockSkew: '1s' }],
            },
            targets: [
              { name: 'producers', provider: 'dotenv', path: 'producers.env' },
              { name: 'workers', provider: 'dotenv', path: 'workers.env' },
            ],
          },
        },
      }),
    );
    const fleet = new StemSqlFleet(db);
    const producerEnv = join(dir, 'producers.env');
    const workers = [new SqlWorker(fleet, 'worker-1', () => loadEnvFile(join(dir, 'workers.env')), 2001), new SqlWorker(fleet, 'worker-2', () => loadEnvFile(join(dir, 'workers.env')), 2002)];
    let producer = loadEnvFile(producerEnv);
    const run = () => {
      const result = cli(['run', '--once', '--json', '--config', config]);
      expect(result.stderr).not.toMatch(/Error:|at .*\.js/);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout)[0] as { phase: string; outcome: string; message: string; action: string };
    };
    return {
      dir,
      db,
      fleet,
      workers,
      config,
      run,
      heartbeat: () => Promise.all(workers.map((worker) => worker.heartbeat())),
      /** Start, restart every worker a soak later, and activate. */
      activate: async () => {
        await Promise.all(workers.map((worker) => worker.heartbeat()));
        expect(run()).toMatchObject({ phase: 'added' });
        await sleep(1100);
        for (const worker of workers) worker.restart();
        await Promise.all(workers.map((worker) => worker.heartbeat()));
        expect(run()).toMatchObject({ phase: 'activated' });
      },
      restartProducer: () => {
        producer = loadEnvFile(producerEnv);
      },
      producer: () => producer,
      enqueue: async (count: number) => {
        for (let i = 0; i < count; i += 1) await fleet.enqueue(producer);
      },
      consumeAll: async () => {
        const totals = { ok: 0, dead: 0 };
        for (const worker of workers) {
          const { ok, dead } = await worker.consume();
          totals.ok += ok;
          totals.dead += dead;
        }
        return totals;
      },
    };
  }

  it('check reaches the broker and backend with read-only access', async () => {
    const f = setup();
    await f.heartbeat();
    const result = cli(['check', '--config', f.config]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(kind === 'postgres' ? /broker postgres postgres:\/\/.*rows in stem_queue_jobs/ : /broker sqlite .*stem\.db.*rows in stem_queue_jobs/);
    expect(result.stdout).toMatch(/2 workers in stem_worker_heartbeats \(namespace "stem"\)/);
  });

  it('holds at each gate until the fleet is ready, then completes with no dead letters', async () => {
    const f = setup();
    await f.heartbeat();
    await f.enqueue(3);
    expect(await f.consumeAll()).toEqual({ ok: 3, dead: 0 });

    expect(f.run()).toMatchObject({ action: 'start', phase: 'added' });
    await sleep(1100);
    await f.heartbeat();
    const waiting = f.run();
    expect(waiting).toMatchObject({ outcome: 'blocked', phase: 'added' });
    expect(waiting.message).toMatch(/stem-workers \(wait\): 2 of 2 live workers have not restarted.*worker-1 \(host test-host, pid 2001/);

    for (const worker of f.workers) worker.restart();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ action: 'advance', phase: 'activated' });

    await sleep(1100);
    await f.enqueue(2); // the producer has not reloaded: still the old key, still queued
    for (const worker of f.workers) worker.restart();
    await f.heartbeat();
    const draining = f.run();
    expect(draining).toMatchObject({ outcome: 'blocked', phase: 'activated' });
    expect(draining.message).toMatch(/stem-backlog \(wait\): 2 queued envelopes are still signed with .*a signer has not reloaded/);
    expect(draining.message).toMatch(/stem-signers \(wait\): a signer has not switched .* 2 on default/);

    f.restartProducer();
    await sleep(300); // a quiet grace period after the last old-key envelope
    await f.enqueue(2);
    expect(f.run()).toMatchObject({ outcome: 'blocked' }); // the old-key rows are still queued
    expect(await f.consumeAll()).toEqual({ ok: 4, dead: 0 });
    await f.enqueue(1); // new-key rows seen by stem-signers, after the old ones were consumed
    await f.heartbeat();
    expect(f.run()).toMatchObject({ action: 'advance', phase: 'stable' });

    for (const worker of f.workers) worker.restart();
    f.restartProducer();
    await f.enqueue(2);
    expect(await f.consumeAll()).toEqual({ ok: 3, dead: 0 });
    expect(await f.db.run('SELECT count(*) AS n FROM stem_dead_letters')).toEqual([{ n: kind === 'postgres' ? '0' : 0 }]);
  });

  it('never drops while one producer is never restarted: stem-signers holds it', async () => {
    const f = setup();
    await f.activate();
    await sleep(1100);
    for (const worker of f.workers) worker.restart();
    const stale = f.producer(); // this producer keeps the keys it read before activation
    f.restartProducer();
    for (let i = 0; i < 3; i += 1) {
      await f.fleet.enqueue(f.producer());
      await f.fleet.enqueue(stale, 'reports');
      await f.heartbeat();
      const result = f.run();
      expect(result).toMatchObject({ outcome: 'blocked', phase: 'activated' });
      expect(result.message).toMatch(/stem-signers \(wait\): a signer has not switched to "demo-[^"]+".* on reports signed with "demo-/);
      await f.consumeAll();
      await f.workers[0]!.consume('reports');
      await sleep(300);
    }
  });

  it('never activates while a worker has not restarted, and never while workers dead-letter the new key', async () => {
    const f = setup();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'added' });
    await sleep(1100);
    f.workers[0]!.restart();
    await f.heartbeat();
    const one = f.run();
    expect(one).toMatchObject({ outcome: 'blocked', phase: 'added' });
    expect(one.message).toMatch(/1 of 2 live workers have not restarted.*worker-2/);

    f.workers[1]!.restart();
    await f.heartbeat();
    // a producer that jumped the gun signs with the new key; a worker still holding only the old one rejects it
    const rogue = loadEnvFile(join(f.dir, 'producers.env'));
    await f.fleet.enqueue({ ...rogue, activeKeyId: [...rogue.signingKeys.keys()][1] as string });
    writeFileSync(join(f.dir, 'old.env'), 'STEM_SIGNING_KEYS=placeholder:YWJj\nSTEM_SIGNING_ACTIVE_KEY=placeholder\n');
    const stale = new SqlWorker(f.fleet, 'worker-stale', () => loadEnvFile(join(f.dir, 'old.env')), 2003);
    expect(await stale.consume()).toEqual({ ok: 0, dead: 1 });
    await f.db.run('DELETE FROM stem_worker_heartbeats WHERE worker_id = $1', ['worker-stale']);
    const result = f.run();
    expect(result).toMatchObject({ outcome: 'blocked', phase: 'added' });
    expect(result.message).toMatch(/stem-dlq \(wait\): 1 signature-invalid dead letters .*unknown-key key "demo-/);

    const inspected = cli(['dlq', 'inspect', 'demo', '--json', '--config', f.config]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ scanned: 1, groups: [expect.objectContaining({ queue: 'default', errorClass: 'unknown-key', count: 1 })] });
    const replay = cli(['dlq', 'replay', 'demo', '--resign', '--dry-run', '--config', f.config]);
    expect(replay.code).toBe(2);
    expect(replay.stderr).toMatch(/dlq replay needs Stem's broker on Redis; this ring's broker is (postgres|sqlite) /);
  });

  it('dlq inspect verifies a dead letter whose args hold 10.0 and an integer beyond 2^53, read back as the store returns it', async () => {
    const f = setup();
    const args = parseStemJson('{"amount": 10.0, "ledger": 9007199254740993, "ratio": 0.1}') as Record<string, unknown>;
    const signed = signEnvelope(newEnvelope('payments', new Date(), { args }), f.producer());
    await f.fleet.deadLetter(signed, 'signature-invalid', { error: 'signature mismatch', keyId: signed.headers['stem-signature-key'] as string });
    const stored = await f.db.run(`SELECT envelope${kind === 'postgres' ? '::text' : ''} AS envelope FROM stem_dead_letters`);
    expect(String(stored[0]?.envelope)).toMatch(/"amount": ?10\.0/);
    const inspected = cli(['dlq', 'inspect', 'demo', '--json', '--config', f.config]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ groups: [expect.objectContaining({ queue: 'payments', verifiesWith: signed.headers['stem-signature-key'] })] });
  });

  it('counts delayed and in-flight rows by their columns, and (PostgreSQL) broadcasts any new worker would re-read', async () => {
    const f = setup({ allowIdle: true });
    await f.activate();
    const old = f.producer();
    await f.fleet.enqueue(old, 'default', {}, new Date(Date.now() + 3_600_000)); // a retry due in an hour
    // a requeued row keeps a future notBefore in its JSON but the column is cleared: queued (§8)
    const requeued = await f.fleet.enqueue(old, 'default');
    if (kind === 'postgres') await f.db.run(`UPDATE stem_queue_jobs SET envelope = jsonb_set(envelope, '{notBefore}', to_jsonb($1::text)) WHERE id = $2`, [new Date(Date.now() + 3_600_000).toISOString(), requeued.id]);
    const inFlight = await f.fleet.enqueue(old, 'default');
    await f.db.run('UPDATE stem_queue_jobs SET locked_at = $1, locked_until = $2, locked_by = $3 WHERE id = $4', [new Date(), new Date(Date.now() + 3_600_000), 'default::default::billing-1::0196', inFlight.id]);
    if (kind === 'postgres') {
      const message = await f.fleet.broadcast(old, 'cache-flush');
      await f.fleet.ackBroadcast(message.id, 'billing-1');
    }
    await sleep(1100);
    for (const worker of f.workers) worker.restart();
    await f.heartbeat();
    const result = f.run();
    expect(result).toMatchObject({ outcome: 'blocked', phase: 'activated' });
    expect(result.message).toMatch(/stem-backlog \(wait\): 3 queued envelopes are still signed with/);
    const status = cli(['status', 'demo', '--json', '--config', f.config]);
    const report = JSON.parse(status.stdout) as { gates: { name: string; evidence?: { sources?: { key: string; source: string; signed: number }[] } }[] } | { gates: unknown }[];
    const gates = (Array.isArray(report) ? report[0] : report) as { gates: { name: string; evidence?: { sources?: { key: string; source: string; signed: number }[] } }[] };
    const sources = gates.gates.find((gate) => gate.name === 'stem-backlog')?.evidence?.sources ?? [];
    expect(sources).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'default', source: 'delayed', signed: 1 }), expect.objectContaining({ key: 'default', source: 'stream', signed: 1 }), expect.objectContaining({ key: 'default', source: 'pending', signed: 1 })]));
    if (kind === 'postgres') {
      expect(sources).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'cache-flush', source: 'broadcast-retained', signed: 1 })]));
    }
    await f.db.run('DELETE FROM stem_queue_jobs');
    const next = f.run();
    if (kind === 'sqlite') {
      expect(next).toMatchObject({ action: 'advance', phase: 'stable' });
      return;
    }
    expect(next.message).toMatch(/1 broadcasts signed with .* stay in cache-flush \(1\).*stem-rotor broadcast resign demo CHANNEL --dry-run/);
    // a second broadcast that billing-1 has not read yet is re-signed in place; the one it read is deleted
    const unread = await f.fleet.broadcast(old, 'cache-flush');
    const preview = cli(['broadcast', 'resign', 'demo', 'cache-flush', '--dry-run', '--json', '--config', f.config]);
    expect(preview.code, preview.stderr).toBe(0);
    expect(JSON.parse(preview.stdout)).toMatchObject({ dryRun: true, entries: [expect.objectContaining({ action: 'remove' }), expect.objectContaining({ id: unread.id, action: 'resign', why: 'worker billing-1 has not received it' })] });
    // the example's role only reads: the write is refused in one line, nothing changes
    const refused = cli(['broadcast', 'resign', 'demo', 'cache-flush', '--yes', '--config', f.config]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/permission denied for table stem_broadcast_messages/);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(await f.db.run('SELECT count(*)::int AS n FROM stem_broadcast_messages')).toEqual([{ n: 2 }]);
    const optional = /^-- (GRANT UPDATE .*);$/m.exec(readFileSync(GRANTS, 'utf8'))?.[1] as string;
    await f.db.run(optional.replace('stem_rotor', `${(f.db as PostgresDatabase).name}_reader`));
    const applied = cli(['broadcast', 'resign', 'demo', 'cache-flush', '--yes', '--config', f.config]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/re-signed 1 broadcasts with "demo-[^"]+", removed 1 already consumed/);
    const rows = await f.db.run('SELECT id, envelope FROM stem_broadcast_messages');
    expect(rows).toHaveLength(1);
    const stored = rows[0] as { id: string; envelope: { headers: Record<string, string> } };
    expect(stored.id).toBe(unread.id);
    expect(f.run()).toMatchObject({ action: 'advance', phase: 'stable' });
    // a worker reading it now, with only the keys left after the drop, verifies it
    const after = loadEnvFile(join(f.dir, 'workers.env'));
    expect(after.signingKeys.size).toBe(1);
    expect(stored.envelope.headers['stem-signature-key']).toBe(after.activeKeyId);
    expect(verifyEnvelope(stored.envelope as unknown as Envelope, after)).toMatchObject({ ok: true });
  });
});

/**
 * `check` against Stem's SQL stores as they go wrong in the field: a database without Stem's tables,
 * a role without the grants, an unreachable server, an absent SQLite file, a password variable that
 * is not set, a URL that is no store at all. Each is one line naming the store and what to do.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSql, postgresConfig } from '../../src/stem/sql.js';
import { sqlBacklog } from '../../src/stem/sql-evidence.js';
import { stemEndpointSchema } from '../../src/config/schema.js';
import { cli } from '../helpers/cli.js';
import { snapshotTree, tempDir } from '../helpers/fs.js';
import { PostgresDatabase } from '../helpers/stem-sql.js';

let empty: PostgresDatabase;
let stem: PostgresDatabase;

beforeAll(async () => {
  empty = await PostgresDatabase.create('stem_rotor_sqlcheck_empty', { withStemTables: false });
  stem = await PostgresDatabase.create('stem_rotor_sqlcheck');
  await stem.run(`CREATE ROLE ${stem.name}_reader LOGIN`); // no grants at all
});
afterAll(async () => {
  await empty?.drop();
  await stem?.drop();
});

function ringWith(broker: Record<string, unknown>, backend?: Record<string, unknown>): { dir: string; config: string } {
  const dir = tempDir('stem-rotor-sqlcheck-');
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'sql.json');
  const targets = [{ name: 'producers', provider: 'dotenv', path: 'producers.env' }, { name: 'workers', provider: 'dotenv', path: 'workers.env' }];
  writeFileSync(config, JSON.stringify({ store: { type: 'file', dir: 'state' }, rings: { demo: { algorithm: 'hmac-sha256', stem: { broker, ...(backend ? { backend } : {}) }, targets } } }));
  return { dir, config };
}

describe('check on SQL stores', () => {
  it('a database without Stem tables, and a role without grants, are named with what to do', () => {
    const { config } = ringWith({ url: empty.url }, { url: `postgres://${stem.name}_reader@127.0.0.1:5432/${stem.name}` });
    const result = cli(['check', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/broker postgres postgres:\/\/postgres@127\.0\.0\.1:5432\/stem_rotor_sqlcheck_empty\S*: UNREACHABLE \(.*relation "stem_queue_jobs" does not exist \(Stem's tables are not here: wrong database or file, or Stem's migrations have not run there\)\)/);
    expect(result.stdout).toMatch(/backend postgres .*: UNREACHABLE \(.*permission denied for table stem_worker_heartbeats \(grant SELECT on the table, as examples\/postgres\/grants\.sql does\)\)/);
  });

  it('an unreachable server and an absent SQLite file are one line each; nothing is written', () => {
    const dir = tempDir('stem-rotor-sqlcheck-');
    const { dir: ringDir, config } = ringWith({ url: 'postgres://stem@127.0.0.1:9/stem', connectTimeout: '2s' }, { url: `sqlite://${join(dir, 'absent.db')}` });
    const before = snapshotTree(ringDir);
    const result = cli(['check', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/broker postgres postgres:\/\/stem@127\.0\.0\.1:9\/stem: UNREACHABLE \(cannot reach Stem's broker PostgreSQL .*ECONNREFUSED/);
    expect(result.stdout).toMatch(/backend sqlite .*absent\.db: UNREACHABLE \(cannot open Stem's backend SQLite file .*absent\.db: unable to open database file\)/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(snapshotTree(ringDir)).toEqual(before);
  });

  it('a password variable that is not set, and a URL that is no store, are config errors (exit 2) naming where', () => {
    const { config } = ringWith({ url: `postgres://stem@127.0.0.1:5432/${stem.name}`, passwordEnv: 'STEM_ROTOR_TEST_UNSET_PG' });
    const unset = cli(['check', '--config', config]);
    expect(unset.stdout + unset.stderr).toMatch(/\$STEM_ROTOR_TEST_UNSET_PG is not set/);
    const { config: bad } = ringWith({ url: 'mysql://db/stem' });
    const invalid = cli(['check', '--config', bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/rings\.demo\.stem\.broker\.url.*expected redis:\/\/host:port\/db, rediss:\/\/…, postgres:\/\/\[user@\]host:port\/database or sqlite:\/\/\/path\/to\/stem\.db/);
    const { config: sqliteTls } = ringWith({ url: 'sqlite:///var/lib/stem.db', tls: {} });
    const refused = cli(['check', '--config', sqliteTls]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/a SQLite file has no tls/);
  });

  it('TLS and the password come from the endpoint settings, never from argv', () => {
    const dir = tempDir('stem-rotor-sqltls-');
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const endpoint = stemEndpointSchema.parse({ url: 'postgres://rotor@db.internal:6432/stem?sslmode=verify-full', passwordEnv: 'PG_PASS', tls: { ca: join(dir, 'ca.pem'), servername: 'db.internal' } });
    const config = postgresConfig(endpoint, { PG_PASS: 'from-env' });
    expect(config).toMatchObject({ host: 'db.internal', port: 6432, database: 'stem', user: 'rotor', password: 'from-env', options: '-c default_transaction_read_only=on' });
    expect(config.ssl).toMatchObject({ servername: 'db.internal', rejectUnauthorized: true });
    expect(String((config.ssl as { ca: Buffer }).ca)).toContain('BEGIN CERTIFICATE');
    // sslmode=require alone turns on verified TLS; a Unix socket directory is taken from ?host=
    expect(postgresConfig(stemEndpointSchema.parse({ url: 'postgres://rotor@db/stem?sslmode=require' }), {}).ssl).toEqual({ rejectUnauthorized: true });
    expect(postgresConfig(stemEndpointSchema.parse({ url: 'postgres:///stem?host=/run/postgresql', username: 'rotor' }), {})).toMatchObject({ host: '/run/postgresql', database: 'stem', user: 'rotor' });
    expect(stemEndpointSchema.safeParse({ url: 'postgres://rotor@/stem' }).success).toBe(false);
    expect(postgresConfig(stemEndpointSchema.parse({ url: 'postgres://rotor@db/stem' }), {}).ssl).toBeUndefined();
  });

  it('a SQLite file named relative to the config file is found there, wherever the command runs', () => {
    const { dir, config } = ringWith({ url: 'sqlite:data/stem.db' });
    const result = cli(['check', '--config', config]);
    expect(result.stdout).toContain(`broker sqlite ${join(dir, 'data', 'stem.db')}: UNREACHABLE (cannot open Stem's broker SQLite file ${join(dir, 'data', 'stem.db')}`);
  });

  it('a queued envelope whose headers are not an object counts as unreadable (it could be signed with any key), not as unsigned', async () => {
    await stem.run(`INSERT INTO stem_queue_jobs (id, queue, envelope) VALUES ('bad-1', 'default', '{"id": "bad-1", "name": "t", "headers": "not-an-object", "enqueuedAt": "2026-11-28T00:00:00Z"}'), ('plain-1', 'default', '{"id": "plain-1", "name": "t", "headers": {}, "enqueuedAt": "2026-11-28T00:00:00Z"}')`);
    const sql = await connectSql(stemEndpointSchema.parse({ url: stem.url }), 'broker');
    try {
      const report = await sqlBacklog(sql, { namespace: 'stem', keyIds: ['k1'], after: new Date('2026-11-28T01:00:00Z') });
      expect(report.total).toMatchObject({ scanned: 2, unparseable: 1, unsigned: 1, signed: 0 });
    } finally {
      await sql.close();
      await stem.run('DELETE FROM stem_queue_jobs');
    }
  });
});

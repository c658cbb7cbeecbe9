/**
 * Stem's PostgreSQL and SQLite tables, created and filled the way Stem's Dart code does
 * (stem-interop-2 §5, ormed migrations `m_20251227071920_stem` + namespace scoping): envelopes as
 * `Envelope.toJson()` in a JSON column, job state in the columns, `locked_by` as PostgreSQL's
 * `<queue>::<group>::<consumer>::<uuid>` or SQLite's bare consumer, dead letters moved with their
 * stored envelope and `meta {error, keyId}`, heartbeats upserted with `expires_at` = now + TTL by the
 * worker's clock, broadcasts kept with one ack row per worker id. SQLite times are UTC text as
 * Dart's `toIso8601String()` writes them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { envelopeToJson, type Envelope } from '../../src/stem/envelope.js';
import { stringifyStemJson } from '../../src/stem/json.js';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';
import type { StemSigningConfig } from '../../src/stem/signing-env.js';
import { tempDir } from './fs.js';
import { newEnvelope } from './stem-fleet.js';

export const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The tables the rotor reads, per dialect (json → JSONB / TEXT, timestampTz → TIMESTAMPTZ / TEXT). */
function schema(dialect: 'postgres' | 'sqlite'): string {
  const json = dialect === 'postgres' ? 'JSONB' : 'TEXT';
  const time = dialect === 'postgres' ? 'TIMESTAMPTZ' : 'TEXT';
  const stamps = `created_at ${time} DEFAULT CURRENT_TIMESTAMP, updated_at ${time} DEFAULT CURRENT_TIMESTAMP`;
  return `
    CREATE TABLE stem_broadcast_messages (id TEXT PRIMARY KEY, namespace TEXT NOT NULL DEFAULT 'stem', channel TEXT NOT NULL, envelope ${json} NOT NULL, delivery TEXT NOT NULL DEFAULT 'at-least-once', ${stamps});
    CREATE TABLE stem_broadcast_ack (message_id TEXT NOT NULL REFERENCES stem_broadcast_messages(id) ON DELETE CASCADE, worker_id TEXT NOT NULL, namespace TEXT NOT NULL DEFAULT 'stem', acknowledged_at ${time}, ${stamps}, PRIMARY KEY (message_id, worker_id));
    CREATE TABLE stem_queue_jobs (id TEXT PRIMARY KEY, namespace TEXT NOT NULL DEFAULT 'stem', queue TEXT NOT NULL, envelope ${json} NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, max_retries INTEGER NOT NULL DEFAULT 0, priority INTEGER NOT NULL DEFAULT 0, not_before ${time}, locked_at ${time}, locked_until ${time}, locked_by TEXT, ${stamps});
    CREATE TABLE stem_dead_letters (id TEXT PRIMARY KEY, namespace TEXT NOT NULL DEFAULT 'stem', queue TEXT NOT NULL, envelope ${json} NOT NULL, reason TEXT, meta ${json}, dead_at ${time} NOT NULL);
    CREATE TABLE stem_task_results (id TEXT PRIMARY KEY, namespace TEXT NOT NULL DEFAULT 'stem', state TEXT NOT NULL, payload ${json}, error ${json}, attempt INTEGER NOT NULL DEFAULT 0, meta ${json} NOT NULL DEFAULT '{}', expires_at ${time} NOT NULL, ${stamps});
    CREATE TABLE stem_worker_heartbeats (worker_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, "timestamp" ${time} NOT NULL, isolate_count INTEGER NOT NULL, inflight INTEGER NOT NULL, queues ${json} NOT NULL DEFAULT '{}', last_lease_renewal ${time}, version TEXT NOT NULL, extras ${json} NOT NULL DEFAULT '{}', expires_at ${time} NOT NULL, deleted_at ${time}, ${stamps});
  `;
}

export interface SqlExecutor {
  readonly dialect: 'postgres' | 'sqlite';
  /** `sql` uses `$1…`; SQLite's statement is rewritten to `?` (parameters used in order). */
  run(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
}

/** A database of its own for one test file on the machine's PostgreSQL, dropped at the end. */
export class PostgresDatabase implements SqlExecutor {
  readonly dialect = 'postgres' as const;
  readonly name: string;
  readonly url: string;
  private readonly client: pg.Client;

  private constructor(name: string, client: pg.Client) {
    this.name = name;
    this.url = `postgres://postgres@127.0.0.1:5432/${name}`;
    this.client = client;
  }

  static async create(prefix: string, options: { readonly withStemTables?: boolean } = {}): Promise<PostgresDatabase> {
    const name = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${name}` });
    await client.connect();
    if (options.withStemTables ?? true) await client.query(schema('postgres'));
    return new PostgresDatabase(name, client);
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
    return (await this.client.query(sql, [...params])).rows;
  }

  async reset(): Promise<void> {
    await this.run('TRUNCATE stem_broadcast_ack, stem_broadcast_messages, stem_queue_jobs, stem_dead_letters, stem_task_results, stem_worker_heartbeats');
  }

  async drop(): Promise<void> {
    await this.client.end();
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${this.name}_reader`);
    } finally {
      await admin.end();
    }
  }
}

/** A Stem SQLite file (WAL, as Stem opens it) in a temp dir. */
export class SqliteDatabase implements SqlExecutor {
  readonly dialect = 'sqlite' as const;
  readonly path: string;
  readonly url: string;
  private readonly db: Database.Database;

  constructor() {
    this.path = join(tempDir('stem-rotor-sqlite-'), 'stem.db');
    this.url = `sqlite://${this.path}`;
    this.db = new Database(this.path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(schema('sqlite'));
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
    const ordered = [...sql.matchAll(/\$(\d+)/g)].map((match) => params[Number(match[1]) - 1]);
    const statement = this.db.prepare(sql.replace(/\$\d+/g, '?'));
    const values = ordered.map((value) => (value instanceof Date ? dartUtc(value) : typeof value === 'boolean' ? Number(value) : value));
    return statement.reader ? (statement.all(...values) as Record<string, unknown>[]) : (statement.run(...values), []);
  }

  async reset(): Promise<void> {
    this.db.exec('DELETE FROM stem_broadcast_ack; DELETE FROM stem_broadcast_messages; DELETE FROM stem_queue_jobs; DELETE FROM stem_dead_letters; DELETE FROM stem_task_results; DELETE FROM stem_worker_heartbeats;');
  }

  async drop(): Promise<void> {
    this.db.close();
  }
}

/** `DateTime.toUtc().toIso8601String()` for a millisecond instant. */
export function dartUtc(date: Date): string {
  return date.toISOString();
}

/** Stem's producers, workers and dead-lettering on the SQL tables. */
export class StemSqlFleet {
  readonly db: SqlExecutor;
  readonly namespace: string;
  readonly now: () => Date;

  constructor(db: SqlExecutor, namespace = 'stem', now: () => Date = () => new Date()) {
    this.db = db;
    this.namespace = namespace;
    this.now = now;
  }

  private json(value: unknown): string {
    return stringifyStemJson(value);
  }

  /** `PostgresBroker.publish` / `SqliteBroker.publish`: upsert of the job row by envelope id. */
  async enqueue(config: StemSigningConfig | null, queue = 'default', overrides: Partial<Envelope> = {}, notBefore: Date | null = null): Promise<Envelope> {
    const envelope = newEnvelope(queue, this.now(), { ...overrides, ...(notBefore ? { notBefore: notBefore.toISOString() } : {}) });
    const signed = config ? signEnvelope(envelope, config) : envelope;
    await this.db.run(
      `INSERT INTO stem_queue_jobs (id, namespace, queue, envelope, attempt, max_retries, priority, not_before) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET envelope = excluded.envelope, attempt = excluded.attempt, not_before = excluded.not_before`,
      [signed.id, this.namespace, queue, this.json(envelopeToJson(signed)), signed.attempt, signed.maxRetries, signed.priority, notBefore],
    );
    return signed;
  }

  /** A broadcast as `PostgresBroker.publish` keeps it (forever). */
  async broadcast(config: StemSigningConfig | null, channel: string): Promise<Envelope> {
    const envelope = newEnvelope(channel, this.now());
    const signed = config ? signEnvelope(envelope, config) : envelope;
    await this.db.run(`INSERT INTO stem_broadcast_messages (id, namespace, channel, envelope, delivery) VALUES ($1, $2, $3, $4, 'at-least-once')`, [signed.id, this.namespace, channel, this.json(envelopeToJson(signed))]);
    return signed;
  }

  /** `_ackBroadcast`: one ack row per worker id. */
  async ackBroadcast(messageId: string, workerId: string): Promise<void> {
    await this.db.run(`INSERT INTO stem_broadcast_ack (message_id, worker_id, namespace, acknowledged_at) VALUES ($1, $2, $3, $4)`, [messageId, workerId, this.namespace, this.now()]);
  }

  /** Dead-letters a job: the row moves with its stored envelope (PostgreSQL writes `unknown` for a blank reason). */
  async deadLetter(envelope: Envelope, reason: string, meta: { error: string; keyId?: string } | null): Promise<void> {
    const rows = await this.db.run(`SELECT queue, envelope${this.db.dialect === 'postgres' ? '::text' : ''} AS envelope FROM stem_queue_jobs WHERE id = $1`, [envelope.id]);
    const stored = rows[0] ? String(rows[0].envelope) : this.json(envelopeToJson(envelope));
    const queue = rows[0] ? String(rows[0].queue) : envelope.queue;
    await this.db.run('DELETE FROM stem_queue_jobs WHERE id = $1', [envelope.id]);
    await this.db.run(
      `INSERT INTO stem_dead_letters (id, namespace, queue, envelope, reason, meta, dead_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET envelope = excluded.envelope, reason = excluded.reason, meta = excluded.meta, dead_at = excluded.dead_at`,
      [envelope.id, this.namespace, queue, stored, reason, meta === null ? null : JSON.stringify(meta), this.now()],
    );
  }
}

/** A Stem worker on the SQL broker: locks queued rows, verifies with the keys it loaded at start, acks (deletes) or dead-letters. */
export class SqlWorker {
  config: StemSigningConfig;
  startedAt: Date;
  readonly id: string;
  readonly fleet: StemSqlFleet;
  private readonly load: () => StemSigningConfig;
  readonly pid: number;

  constructor(fleet: StemSqlFleet, id: string, load: () => StemSigningConfig, pid: number) {
    this.fleet = fleet;
    this.id = id;
    this.load = load;
    this.pid = pid;
    this.config = load();
    this.startedAt = new Date(fleet.now().getTime() - 3_600_000); // running for an hour
  }

  restart(): void {
    this.config = this.load();
    this.startedAt = this.fleet.now();
  }

  /** `setWorkerHeartbeat`: upsert by worker id, namespace = the backend's, `expires_at` = now + 60 s. */
  async heartbeat(): Promise<void> {
    const now = this.fleet.now();
    const extras = { host: 'test-host', pid: this.pid, startedAt: this.startedAt.toISOString() };
    await this.fleet.db.run(
      `INSERT INTO stem_worker_heartbeats (worker_id, namespace, "timestamp", isolate_count, inflight, queues, last_lease_renewal, version, extras, expires_at) VALUES ($1, $2, $3, 1, 0, $4, NULL, '0.2.0', $5, $6)
       ON CONFLICT (worker_id) DO UPDATE SET namespace = excluded.namespace, "timestamp" = excluded."timestamp", extras = excluded.extras, expires_at = excluded.expires_at, deleted_at = NULL`,
      [this.id, this.fleet.namespace, now, JSON.stringify({ items: [{ name: 'default', inflight: 0 }] }), JSON.stringify(extras), new Date(now.getTime() + 60_000)],
    );
  }

  /** Claims up to `count` queued rows (locked_by per dialect), then verifies each: ack = DELETE, failure = dead letter. */
  async consume(queue = 'default', count = 1000): Promise<{ ok: number; dead: number }> {
    const { db } = this.fleet;
    const now = this.fleet.now();
    const rows = await db.run(
      `SELECT id, envelope${db.dialect === 'postgres' ? '::text' : ''} AS envelope FROM stem_queue_jobs
       WHERE namespace = $1 AND queue = $2 AND (not_before IS NULL OR not_before <= $3) AND (locked_until IS NULL OR locked_until <= $3) ORDER BY created_at LIMIT ${count}`,
      [this.fleet.namespace, queue, now],
    );
    let ok = 0;
    let dead = 0;
    for (const row of rows) {
      const lockedBy = db.dialect === 'postgres' ? `${queue}::default::${this.id}::${randomUUID()}` : this.id;
      await db.run('UPDATE stem_queue_jobs SET locked_at = $1, locked_until = $2, locked_by = $3 WHERE id = $4', [now, new Date(now.getTime() + 30_000), lockedBy, row.id]);
      const envelope = JSON.parse(String(row.envelope)) as Envelope;
      const verdict = verifyEnvelope(envelope, this.config);
      if (verdict.ok) {
        await db.run('DELETE FROM stem_queue_jobs WHERE id = $1', [row.id]);
        ok += 1;
      } else {
        await this.fleet.deadLetter(envelope, 'signature-invalid', { error: verdict.message, ...(verdict.keyId ? { keyId: verdict.keyId } : {}) });
        dead += 1;
      }
    }
    return { ok, dead };
  }
}

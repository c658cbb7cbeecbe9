/**
 * Stem's evidence from its PostgreSQL or SQLite tables (stem-interop-2 §5.2–5.4): heartbeats, dead
 * letters, queued/delayed/in-flight jobs and broadcasts, read with the sheet's queries. Job state comes
 * from the columns, never the envelope JSON (a requeued row keeps its old `notBefore`, §8). PostgreSQL
 * compares against its own `now()`; SQLite holds UTC text in Dart's form, compared as text as Stem does.
 */
import { emptyCount, type BacklogCount, type BacklogReport, type BacklogSource } from './backlog.js';
import { SIGNATURE_KEY_HEADER } from './canonical.js';
import { classifyFailure, type DeadLetter, type DeadLetterScan } from './dead-letters.js';
import type { Envelope } from './envelope.js';
import { parseStemJson } from './json.js';
import type { SqlClient, SqlRow } from './sql.js';
import { stemInstant } from './timestamps.js';

/** Stem's own control traffic, excluded from key counts by name (§5.4, §7.9). */
const CONTROL_NAMES = ['__stem.control__', '__stem.control.reply__', '__stem.queue.event__'];

/** SQL fragments per dialect: JSON text at a path, a time column as ISO text with µs, "now". */
function dialectOf(sql: SqlClient) {
  const pg = sql.dialect === 'postgres';
  let index = 0;
  return {
    param: () => (pg ? `$${++index}` : '?'),
    /** A JSON value's type at a path ('object', 'string', …; null when absent). */
    type: (column: string, key: string) => (pg ? `jsonb_typeof(${column}->'${key}')` : `json_type(${column}, '$."${key}"')`),
    /** A JSON text field, path given as keys. */
    text: (column: string, ...path: string[]) => (pg ? `${column}${path.map((key, i) => `${i === path.length - 1 ? '->>' : '->'}'${key}'`).join('')}` : `json_extract(${column}, '$${path.map((key) => `."${key}"`).join('')}')`),
    time: (column: string) => (pg ? `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` : column),
    now: pg ? 'now()' : "strftime('%Y-%m-%dT%H:%M:%fZ','now')",
    /** A time parameter: PostgreSQL takes an instant, SQLite compares Dart's UTC text. */
    at: (date: Date) => (pg ? date : date.toISOString()),
    envelope: (column: string) => (pg ? `${column}::text` : column),
  };
}

function stringOf(value: unknown): string | null {
  return typeof value === 'string' ? value : value === null || value === undefined ? null : String(value);
}

// ─── heartbeats ────────────────────────────────────────────────────────────────────────────────

export interface SqlHeartbeat {
  readonly workerId: string;
  /** The heartbeat as Stem's Redis backend would hold it: `timestamp` and `extras`. */
  readonly heartbeat: { readonly timestamp: string | null; readonly extras: unknown };
}

/**
 * Live heartbeats (`expires_at` after now) of the backend namespace; `deleted_at` is not consulted,
 * because SQLite's clean-up soft-deletes rows a live worker then keeps updating (§5.3).
 */
export async function sqlHeartbeats(sql: SqlClient, backendNamespace: string): Promise<SqlHeartbeat[]> {
  const d = dialectOf(sql);
  const rows = await sql.query(
    `SELECT worker_id, ${d.time('"timestamp"')} AS beat, ${sql.dialect === 'postgres' ? 'extras::text' : 'extras'} AS extras
     FROM stem_worker_heartbeats WHERE namespace = ${d.param()} AND expires_at > ${d.now} ORDER BY worker_id`,
    [backendNamespace],
  );
  return rows.map((row) => {
    let extras: unknown = null;
    try {
      extras = JSON.parse(String(row.extras ?? 'null'));
    } catch {
      extras = undefined;
    }
    return { workerId: String(row.worker_id), heartbeat: { timestamp: stringOf(row.beat), extras } };
  });
}

/** Rows in `stem_queue_jobs` of the namespace (for `check`: the table is there and readable). */
export async function sqlJobRows(sql: SqlClient, namespace: string): Promise<number> {
  const rows = await sql.query(`SELECT count(*) AS n FROM stem_queue_jobs WHERE namespace = ${dialectOf(sql).param()}`, [namespace]);
  return Number(rows[0]?.n ?? 0);
}

/** Rows in `stem_worker_heartbeats` of the namespace, live or not (for `check`). */
export async function sqlHeartbeatRows(sql: SqlClient, backendNamespace: string): Promise<number> {
  const rows = await sql.query(`SELECT count(*) AS n FROM stem_worker_heartbeats WHERE namespace = ${dialectOf(sql).param()}`, [backendNamespace]);
  return Number(rows[0]?.n ?? 0);
}

// ─── dead letters ──────────────────────────────────────────────────────────────────────────────

function deadLetterOf(row: SqlRow, timezone: string | null): DeadLetter | 'malformed' {
  const raw = String(row.envelope ?? '');
  let envelope: Envelope;
  let meta: { error?: unknown; keyId?: unknown } = {};
  try {
    envelope = parseStemJson(raw) as Envelope;
    if (typeof envelope !== 'object' || envelope === null) return 'malformed';
    if (row.meta !== null && row.meta !== undefined) meta = JSON.parse(String(row.meta)) ?? {};
  } catch {
    return 'malformed';
  }
  const error = typeof meta.error === 'string' ? meta.error : '';
  const header = envelope.headers?.[SIGNATURE_KEY_HEADER];
  const keyId = typeof meta.keyId === 'string' ? meta.keyId : typeof header === 'string' ? header : 'none';
  const deadAt = stemInstant(String(row.dead_at ?? ''), timezone);
  return { queue: String(row.queue), raw, envelope, error, keyId, errorClass: classifyFailure(error, envelope), deadAt: deadAt?.at ?? null, zoneLess: deadAt?.zoneLess ?? false };
}

/**
 * `signature-invalid` dead letters since a time, newest first. Blind spots (§5.4): broadcast
 * rejections leave no row, the sweeper deletes rows older than 7 days, PostgreSQL upserts repeats.
 */
export async function sqlDeadLetters(sql: SqlClient, namespace: string, options: { readonly since: Date | null; readonly maxEntries: number; readonly timezone: string | null }): Promise<DeadLetterScan> {
  const d = dialectOf(sql);
  const params: unknown[] = [namespace];
  const namespaceParam = d.param();
  let since = '';
  if (options.since) {
    since = ` AND dead_at >= ${d.param()}`;
    params.push(d.at(options.since));
  }
  const rows = await sql.query(
    `SELECT id, queue, ${d.time('dead_at')} AS dead_at, ${d.envelope('envelope')} AS envelope, ${sql.dialect === 'postgres' ? 'meta::text' : 'meta'} AS meta
     FROM stem_dead_letters WHERE namespace = ${namespaceParam} AND reason = 'signature-invalid'${since}
     ORDER BY dead_at DESC LIMIT ${Math.max(0, Math.floor(options.maxEntries)) + 1}`,
    params,
  );
  const truncated = rows.length > options.maxEntries;
  const signatureInvalid: DeadLetter[] = [];
  let malformed = 0;
  let zoneLess = 0;
  for (const row of rows.slice(0, options.maxEntries)) {
    const letter = deadLetterOf(row, options.timezone);
    if (letter === 'malformed') malformed += 1;
    else {
      if (letter.zoneLess) zoneLess += 1;
      signatureInvalid.push(letter);
    }
  }
  const queues = [...new Set(signatureInvalid.map((letter) => letter.queue))].sort();
  return { scanned: Math.min(rows.length, options.maxEntries), signatureInvalid, malformed, truncated, queues, zoneLess };
}

// ─── backlog ───────────────────────────────────────────────────────────────────────────────────

export interface SqlBacklogOptions {
  readonly namespace: string;
  readonly keyIds: readonly string[];
  readonly after: Date;
}

/**
 * Queued, delayed and in-flight jobs by signing key (§5.4 a), and on PostgreSQL every broadcast: all
 * are kept forever, and any new worker id reads each one it has not acknowledged (§1.3). Rows a known
 * worker has not acknowledged are its undelivered backlog; the rest are retained. SQLite never
 * persists broadcasts.
 */
export async function sqlBacklog(sql: SqlClient, options: SqlBacklogOptions): Promise<BacklogReport> {
  const d = dialectOf(sql);
  // '' unsigned; NULL headers that are not an object (Stem cannot decode such an envelope): unreadable
  const keyId = `CASE WHEN ${d.type('envelope', 'headers')} NOT IN ('object', 'null') THEN NULL ELSE COALESCE(${d.text('envelope', 'headers', SIGNATURE_KEY_HEADER)}, '') END`;
  const enqueuedAfter = `CASE WHEN ${d.text('envelope', 'enqueuedAt')} > ${d.param()} THEN 1 ELSE 0 END`;
  const afterText = options.after.toISOString();
  const namespace = d.param();
  const names = CONTROL_NAMES.map(() => d.param());
  const jobs = await sql.query(
    `SELECT queue AS source_key, CASE WHEN locked_until > ${d.now} THEN 'pending' WHEN not_before > ${d.now} THEN 'delayed' ELSE 'stream' END AS source,
            ${keyId} AS key_id, ${enqueuedAfter} AS after, count(*) AS n
     FROM stem_queue_jobs WHERE namespace = ${namespace} AND ${d.text('envelope', 'name')} NOT IN (${names.join(', ')})
     GROUP BY 1, 2, 3, 4`,
    [afterText, options.namespace, ...CONTROL_NAMES],
  );
  const groups: { key: string; source: BacklogSource; group?: string; rows: SqlRow[] }[] = [];
  const bucket = (key: string, source: BacklogSource, group?: string) => {
    let found = groups.find((entry) => entry.key === key && entry.source === source && entry.group === group);
    if (!found) groups.push((found = { key, source, ...(group === undefined ? {} : { group }), rows: [] }));
    return found.rows;
  };
  for (const row of jobs) bucket(String(row.source_key), String(row.source) as BacklogSource).push(row);
  if (sql.dialect === 'postgres') {
    const e = dialectOf(sql);
    const broadcastKey = `CASE WHEN ${e.type('m.envelope', 'headers')} NOT IN ('object', 'null') THEN NULL ELSE COALESCE(${e.text('m.envelope', 'headers', SIGNATURE_KEY_HEADER)}, '') END`;
    const broadcastAfter = `CASE WHEN ${e.text('m.envelope', 'enqueuedAt')} > ${e.param()} THEN 1 ELSE 0 END`;
    const broadcastNamespace = e.param();
    const retained = await sql.query(
      `SELECT m.channel AS source_key, ${broadcastKey} AS key_id, ${broadcastAfter} AS after, count(*) AS n
       FROM stem_broadcast_messages m WHERE m.namespace = ${broadcastNamespace} GROUP BY 1, 2, 3`,
      [afterText, options.namespace],
    );
    for (const row of retained) bucket(String(row.source_key), 'broadcast-retained').push(row);
    // Each worker id that has acknowledged any broadcast of a channel still has to read the rest.
    const unread = await sql.query(
      `SELECT m.channel AS source_key, w.worker_id, ${broadcastKey} AS key_id, ${broadcastAfter} AS after, count(*) AS n
       FROM stem_broadcast_messages m
       JOIN (SELECT DISTINCT a.worker_id, b.channel FROM stem_broadcast_ack a JOIN stem_broadcast_messages b ON b.id = a.message_id WHERE a.namespace = ${broadcastNamespace}) w ON w.channel = m.channel
       WHERE m.namespace = ${broadcastNamespace}
         AND NOT EXISTS (SELECT 1 FROM stem_broadcast_ack k WHERE k.message_id = m.id AND k.worker_id = w.worker_id AND k.acknowledged_at IS NOT NULL)
       GROUP BY 1, 2, 3, 4`,
      [afterText, options.namespace],
    );
    for (const row of unread) bucket(String(row.source_key), 'broadcast-undelivered', String(row.worker_id)).push(row);
  }
  const dropping = new Set(options.keyIds);
  const total = emptyCount();
  const retainedTotal = emptyCount();
  const bySource = groups.map(({ key, source, group, rows }) => {
    const count: BacklogCount = emptyCount();
    for (const row of rows) {
      const n = Number(row.n);
      const id = row.key_id === null || row.key_id === undefined ? null : String(row.key_id);
      for (const into of [count, source === 'broadcast-retained' ? retainedTotal : total]) {
        into.scanned += n;
        if (id === null) into.unparseable += n;
        else if (id === '') into.unsigned += n;
        else if (dropping.has(id)) {
          into.signed += n;
          if (Number(row.after) === 1) into.signedAfter += n;
        }
      }
    }
    return { key, source, ...(group === undefined ? {} : { group }), count };
  });
  return { total, retained: retainedTotal, bySource: bySource.sort((a, b) => a.key.localeCompare(b.key) || a.source.localeCompare(b.source) || (a.group ?? '').localeCompare(b.group ?? '')) };
}

// ─── envelopes enqueued since a time (stem-signers) ────────────────────────────────────────────

export interface EnqueuedEnvelope {
  /** The queue, or `broadcast:<channel>`. */
  readonly queue: string;
  readonly keyId: string | null;
  readonly enqueuedAt: string;
}

/**
 * Jobs (and on PostgreSQL broadcasts) whose envelope says it was enqueued after `since`. Stem deletes
 * a job row when it is acknowledged, so this sees only what is still queued, delayed or in flight.
 * The text comparison is widened by 14 hours for zone-less times; callers filter exactly.
 */
export async function sqlEnqueuedSince(sql: SqlClient, namespace: string, since: Date): Promise<EnqueuedEnvelope[]> {
  const widened = new Date(since.getTime() - 14 * 3_600_000).toISOString();
  const d = dialectOf(sql);
  const names = CONTROL_NAMES.map(() => d.param());
  const jobs = await sql.query(
    `SELECT queue, ${d.text('envelope', 'headers', SIGNATURE_KEY_HEADER)} AS key_id, ${d.text('envelope', 'enqueuedAt')} AS enqueued_at
     FROM stem_queue_jobs WHERE ${d.text('envelope', 'name')} NOT IN (${names.join(', ')}) AND namespace = ${d.param()} AND ${d.text('envelope', 'enqueuedAt')} > ${d.param()}`,
    [...CONTROL_NAMES, namespace, widened],
  );
  const rows = jobs.map((row) => ({ queue: String(row.queue), keyId: stringOf(row.key_id), enqueuedAt: String(row.enqueued_at ?? '') }));
  if (sql.dialect === 'postgres') {
    const e = dialectOf(sql);
    const broadcasts = await sql.query(
      `SELECT channel, ${e.text('envelope', 'headers', SIGNATURE_KEY_HEADER)} AS key_id, ${e.text('envelope', 'enqueuedAt')} AS enqueued_at
       FROM stem_broadcast_messages WHERE namespace = ${e.param()} AND ${e.text('envelope', 'enqueuedAt')} > ${e.param()}`,
      [namespace, widened],
    );
    rows.push(...broadcasts.map((row) => ({ queue: `broadcast:${String(row.channel)}`, keyId: stringOf(row.key_id), enqueuedAt: String(row.enqueued_at ?? '') })));
  }
  return rows;
}

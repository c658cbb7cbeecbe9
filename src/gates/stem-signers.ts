/**
 * `stem-signers`: before the old key is dropped, prove every signer switched. Workers restarting is
 * not enough — a producer, Beat or the dashboard that was never restarted keeps signing with the
 * old key, and if its envelopes are consumed promptly the backlog never shows it. Stem never trims
 * its streams (stem-interop-2 §7.3), so every envelope enqueued since the activate write is still
 * there: each one enqueued after the write plus `grace` must carry the new key.
 *
 * It reads only what it has not read before: the last entry id per stream and the running counts
 * are carried in the ring's state (`gateProgress`), saved by commands that hold the ring's lease.
 */
import { scanKeys } from '../stem/redis-scan.js';
import { isStemControlQueue, stemKeys } from '../stem/redis-keys.js';
import { StreamReader } from '../stem/stream-reader.js';
import { stemInstant } from '../stem/timestamps.js';
import type { Redis } from 'ioredis';
import type { StemEndpoint, StemSignals } from '../config/schema.js';
import type { SqlClient } from '../stem/sql.js';
import { sqlEnqueuedSince } from '../stem/sql-evidence.js';
import { phaseTimes, requireStem, type Gate, type GateContext, verdictOf, type GateResult } from './types.js';

export const GATE_TYPE = 'stem-signers';

export interface StemSignersOptions {
  readonly name: string;
  /** Envelopes enqueued within this long after the activate write may still carry the old key. */
  readonly graceMs: number;
  /** No envelope at all since the activation passes (otherwise it is unknown: nothing proves anything). */
  readonly allowIdle: boolean;
  readonly batchSize: number;
}

interface OffendingQueue {
  count: number;
  keyIds: string[];
  first: string;
  last: string;
}

/** What the gate carries from one evaluation to the next, for one activation. */
export interface SignerProgress {
  /** The activation it belongs to (its verified time): any other is discarded. */
  activatedAt: string;
  /** Stream key → the last entry id read. */
  cursors: Record<string, string>;
  total: number;
  newKey: number;
  unsigned: number;
  unparseable: number;
  /** Queue → envelopes signed with another key, enqueued after the grace period. */
  offending: Record<string, OffendingQueue>;
  /** Queue → when the newest new-key envelope was enqueued. */
  lastNewKey: Record<string, string>;
}

function freshProgress(activatedAt: string): SignerProgress {
  return { activatedAt, cursors: {}, total: 0, newKey: 0, unsigned: 0, unparseable: 0, offending: {}, lastNewKey: {} };
}

function carried(context: GateContext, name: string, activatedAt: string): SignerProgress {
  const stored = context.state.gateProgress?.[name] as SignerProgress | undefined;
  if (!stored || stored.activatedAt !== activatedAt || typeof stored.cursors !== 'object') return freshProgress(activatedAt);
  return structuredClone(stored);
}

/** Counts one envelope enqueued after the window start into the progress. */
function tallyEnvelope(progress: SignerProgress, queue: string, keyId: string | null | undefined, enqueued: Date | null, newKeyId: string): void {
  progress.total += 1;
  const at = enqueued?.toISOString() ?? 'unknown';
  if (keyId === undefined || enqueued === null) progress.unparseable += 1;
  else if (keyId === null) progress.unsigned += 1;
  else if (keyId === newKeyId) {
    progress.newKey += 1;
    if (!progress.lastNewKey[queue] || at > (progress.lastNewKey[queue] as string)) progress.lastNewKey[queue] = at;
  } else {
    const offending = (progress.offending[queue] ??= { count: 0, keyIds: [], first: at, last: at });
    offending.count += 1;
    if (!offending.keyIds.includes(keyId)) offending.keyIds.push(keyId);
    if (at < offending.first) offending.first = at;
    if (at > offending.last) offending.last = at;
  }
}

/** Reads every stream from its cursor to its end, counting envelopes enqueued after `windowStart`. */
async function scanRedisSince(broker: Redis, endpoint: StemEndpoint, signals: StemSignals, progress: SignerProgress, windowStart: Date, newKeyId: string, batchSize: number, startId: string): Promise<void> {
  const keys = stemKeys(signals.namespace);
  const control = [...new Set([signals.workerNamespace, 'stem'])];
  const streams = (await scanKeys(broker, keys.streamPattern, 'stream')).filter((stream) => {
    const queue = keys.queueOfStream(stream);
    return queue !== null && !isStemControlQueue(queue, control);
  });
  if (streams.length === 0) return;
  const reader = await StreamReader.open(endpoint);
  try {
    for (const stream of streams) {
      const queue = keys.queueOfStream(stream) as string;
      for (let from = progress.cursors[stream] ? `(${progress.cursors[stream]}` : startId; ; ) {
        let seen = 0;
        const last = await reader.entries([['XRANGE', stream, from, '+', 'COUNT', String(batchSize)]], (entry) => {
          seen += 1;
          const enqueued = stemInstant(entry.enqueuedAt() ?? '', signals.timezone ?? null);
          // Promoted delayed envelopes and retries enqueued before the window are not evidence.
          if (enqueued !== null && enqueued.at <= windowStart) return;
          tallyEnvelope(progress, queue, entry.keyId(), enqueued?.at ?? null, newKeyId);
        });
        if (last !== null) progress.cursors[stream] = last;
        if (seen < batchSize || last === null) break;
        from = `(${last}`;
      }
    }
  } finally {
    reader.close();
  }
}

/**
 * The rows still in Stem's tables that were enqueued after `windowStart`. PostgreSQL and SQLite delete
 * a job row when it is acknowledged, so each evaluation sees a sample: what is queued, delayed or in
 * flight at that moment. Per queue, the newest time counted is the cursor, so no row counts twice.
 */
async function scanSqlSince(sql: SqlClient, signals: StemSignals, progress: SignerProgress, windowStart: Date, newKeyId: string): Promise<void> {
  const rows = await sqlEnqueuedSince(sql, signals.namespace, windowStart);
  const cursors = new Map(Object.entries(progress.cursors));
  for (const row of rows) {
    const enqueued = stemInstant(row.enqueuedAt, signals.timezone ?? null);
    if (enqueued !== null && enqueued.at <= windowStart) continue;
    const cursorKey = `sql:${row.queue}`;
    const at = enqueued?.at.toISOString() ?? null;
    const cursor = cursors.get(cursorKey);
    if (at !== null && cursor !== undefined && at <= cursor) continue;
    tallyEnvelope(progress, row.queue, row.keyId, enqueued?.at ?? null, newKeyId);
    if (at !== null && (!progress.cursors[cursorKey] || at > (progress.cursors[cursorKey] as string))) progress.cursors[cursorKey] = at;
  }
}

export function createStemSignersGate(options: StemSignersOptions): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const verdict = verdictOf(options.name);
      const rotation = context.state.rotation;
      if (!rotation || rotation.phase !== 'activated') return verdict('pass', 'no activated key to prove: nothing is signed with a new key yet');
      const times = phaseTimes(context);
      if (!times) return verdict('unknown', 'no verified write time for the activation');
      const activatedAt = times.verified.toISOString();
      const windowStart = new Date(times.verified.getTime() + options.graceMs);
      if (context.now < windowStart) return verdict('wait', `signers have until ${windowStart.toISOString()} (grace ${options.graceMs}ms after the activate write) to switch to "${rotation.newKeyId}"`);
      const progress = carried(context, options.name, activatedAt);
      const stem = requireStem(context);
      const broker = await stem.broker();
      if (broker.kind === 'redis') {
        // Stream ids are Redis's clock: entries added before the activation (moved onto that clock, with a
        // minute of slack) cannot have been enqueued after it.
        const [seconds, micros] = await broker.redis.time();
        const rotorAheadMs = context.now.getTime() - (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000));
        const startId = `${Math.max(0, times.verified.getTime() - rotorAheadMs - 60_000)}-0`;
        await scanRedisSince(broker.redis, broker.endpoint, stem.signals, progress, windowStart, rotation.newKeyId, options.batchSize, startId);
      } else {
        await scanSqlSince(broker.sql, stem.signals, progress, windowStart, rotation.newKeyId);
      }
      const offending = Object.entries(progress.offending).map(([queue, found]) => ({ queue, ...found }));
      const evidence = {
        newKeyId: rotation.newKeyId,
        since: windowStart.toISOString(),
        scanned: progress.total,
        signedWithNewKey: progress.newKey,
        unsigned: progress.unsigned,
        unparseable: progress.unparseable,
        offending,
        ...(broker.kind === 'sql' ? { sampled: 'Stem deletes acknowledged job rows: only envelopes still queued, delayed or in flight at each evaluation were seen' } : {}),
      };
      const carry = { [options.name]: progress };
      // A queue's signer restarted when new-key envelopes followed its newest old-key one and no old-key
      // envelope came for a whole grace period since: two producers on one queue, one never restarted,
      // interleave and must keep blocking.
      const quietSince = new Date(context.now.getTime() - options.graceMs).toISOString();
      const still = offending.filter((queue) => !progress.lastNewKey[queue.queue] || (progress.lastNewKey[queue.queue] as string) <= queue.last || queue.last > quietSince);
      if (still.length > 0) {
        const described = still.map((queue) => `${queue.count} on ${queue.queue} signed with ${queue.keyIds.map((id) => `"${id}"`).join(', ')} (first ${queue.first}, last ${queue.last})`);
        return {
          ...verdict('wait', `a signer has not switched to "${rotation.newKeyId}": envelopes enqueued after ${windowStart.toISOString()} are still signed with another key — ${described.join('; ')}. Restart the producers, Beat and dashboard that feed ${still.map((queue) => queue.queue).join(', ')}`, evidence),
          carry,
        };
      }
      if (progress.unparseable > 0) return { ...verdict('unknown', `${progress.unparseable} envelopes since ${windowStart.toISOString()} have unreadable headers or times`, evidence), carry };
      if (progress.newKey === 0 && offending.length === 0 && !options.allowIdle) {
        return { ...verdict('unknown', `no signed envelope was enqueued since ${windowStart.toISOString()}: nothing proves every signer switched (set allowIdle on the gate for a fleet that may be idle)`, evidence), carry };
      }
      const recovered = offending.length > 0 ? ` (${offending.map((queue) => queue.queue).join(', ')} had old-key envelopes, followed by new-key ones and none since: their signers restarted)` : '';
      const sampled = broker.kind === 'sql' ? ' (sampled: Stem deletes acknowledged job rows, so only envelopes still queued, delayed or in flight at each evaluation were seen)' : '';
      return { ...verdict('pass', `all ${progress.newKey} signed envelopes enqueued since ${windowStart.toISOString()} carry "${rotation.newKeyId}"${recovered}${sampled}`, evidence), carry };
    },
  };
}

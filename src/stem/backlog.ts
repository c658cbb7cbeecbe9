/**
 * Envelopes still queued in Stem's Redis, counted by signing key (stem-interop §2.6): stream
 * entries not yet delivered to the consumer group, pending (delivered, unacknowledged) entries, and
 * delayed ZSET members. Read in pages; memory is bounded by a page, not by the backlog — unless a
 * BacklogMemory is passed, which keeps the entries that matter so the next count reads only what
 * changed (backlog-memory.ts).
 */
import type { Redis } from 'ioredis';
import type { RedisEndpoint } from '../endpoints/schema.js';
import { isStemControlQueue, stemKeys } from './redis-keys.js';
import { consumerGroups, scanKeys } from './redis-scan.js';
import { compareIds } from './stream-format.js';
import { StreamReader } from './stream-reader.js';
import { KeyIdMatcher } from './resp.js';
import { Counter, emptyCount, earliestDelivered, pendingIds, readDelayed, readPending, readRange, streamInfo, type BacklogCount, type StreamInfo } from './backlog-read.js';
import { BacklogMemory, StreamMemory, rememberable, rescanStream, staleReason } from './backlog-memory.js';

export { emptyCount, type BacklogCount } from './backlog-read.js';
export { BacklogMemory, persistMemory, restoreMemory } from './backlog-memory.js';

/**
 * Where an envelope sits. Broadcast channels (stem-interop-2 §1): `broadcast-undelivered` and
 * `broadcast-pending` are one consumer group's backlog (per `group`); `broadcast-retained` is every
 * entry of the never-trimmed channel stream, which a worker starting without a fixed consumer name
 * re-reads from the first entry through a brand-new group.
 */
export type BacklogSource = 'stream' | 'pending' | 'delayed' | 'broadcast-undelivered' | 'broadcast-pending' | 'broadcast-retained';

export interface BacklogReport {
  /** Envelopes some consumer will still receive: queues, delayed sets, broadcast groups' backlogs. */
  readonly total: BacklogCount;
  /** Entries of broadcast channel streams, all of which a fresh consumer group would re-read. */
  readonly retained: BacklogCount;
  readonly bySource: { readonly key: string; readonly source: BacklogSource; readonly group?: string; readonly count: BacklogCount }[];
  /** With a memory: queue streams read whole this time, and why (the others were read incrementally). */
  readonly readWhole?: readonly { readonly key: string; readonly reason: string }[];
}

export interface BacklogOptions {
  readonly namespace: string;
  /** Worker/control namespaces whose `<cns>.control.*` queues are Stem's own (not backlog). */
  readonly controlNamespaces: readonly string[];
  readonly keyIds: readonly string[];
  /** Envelopes enqueued after this are counted separately ("a signer has not reloaded"). */
  readonly after: Date;
  readonly batchSize: number;
  /**
   * A stream longer than this is split by id (time) range into units read on separate connections.
   * @default 50_000
   */
  readonly entriesPerUnit?: number;
}

export const ENTRIES_PER_UNIT = 50_000;

class Tally {
  readonly total = emptyCount();
  readonly retained = emptyCount();
  readonly bySource: BacklogReport['bySource'][number][] = [];
  readonly matcher: KeyIdMatcher;
  private readonly afterMs: number;

  constructor(options: BacklogOptions) {
    this.matcher = new KeyIdMatcher(options.keyIds);
    this.afterMs = options.after.getTime();
  }

  /** A counter for one source; `enqueuedAt` is only read for envelopes signed with a counted key. */
  source(key: string, source: BacklogSource, group?: string): Counter {
    const count = emptyCount();
    this.bySource.push({ key, source, ...(group === undefined ? {} : { group }), count });
    return new Counter([count, source === 'broadcast-retained' ? this.retained : this.total], this.afterMs);
  }
}

type Unit = (reader: StreamReader) => Promise<void>;

function idMs(id: string): number {
  return Number(id.split('-')[0]);
}

/**
 * Splits [from, to] (ids; `from` may be exclusive "(…") into `parts` ranges by id time, so one big
 * stream is read on several connections at once. Each range is [start, end) except the last.
 */
export function splitRange(from: string, to: string, parts: number): { start: string; end: string }[] {
  const low = from === '-' ? Number.NaN : idMs(from.replace('(', ''));
  const high = to === '+' ? Number.NaN : idMs(to);
  if (parts <= 1 || Number.isNaN(low) || Number.isNaN(high) || high - low < parts) return [{ start: from, end: to }];
  const step = (high - low) / parts;
  const bounds = Array.from({ length: parts - 1 }, (_, i) => Math.floor(low + step * (i + 1)));
  return [from, ...bounds.map((ms) => `${ms}-0`)].map((start, i) => ({ start, end: i < bounds.length ? `(${bounds[i]}-0` : to }));
}

/**
 * The units of work for reading one stream whole: entries some group has not received, and the
 * groups' pending entries. A stream can have more than one group: queue `emails` at priority 3 and
 * a queue named `emails:p3` share `<ns>:stream:emails:p3` (stem-interop-2 §7.1), so every group of
 * the stream counts, each entry once. With `remember`, the last unit stops at the last id XINFO
 * reported (later entries are the next count's), and notable entries are noted in it.
 */
async function planStream(redis: Redis, tally: Tally, stream: string, info: StreamInfo, options: BacklogOptions, remember?: StreamMemory): Promise<Unit[]> {
  const { batchSize } = options;
  const perUnit = options.entriesPerUnit ?? ENTRIES_PER_UNIT;
  const delivered = earliestDelivered(info);
  const undelivered = tally.source(stream, 'stream');
  const from = delivered === null ? (info.firstId ?? '-') : `(${delivered}`;
  const to = remember ? info.lastId : '+';
  const units: Unit[] = splitRange(from, info.lastId, Math.ceil(info.length / perUnit)).map((range, index, all) => (reader) =>
    readRange(reader, stream, index === all.length - 1 ? { ...range, end: to } : range, batchSize, tally.matcher, undelivered, remember?.note()),
  );
  if (delivered === null) return units;
  const pending = tally.source(stream, 'pending');
  for (const group of info.groups) {
    const [pendingCount, minId, maxId] = (await redis.xpending(stream, group.name)) as [number, string | null, string | null];
    if (!pendingCount || minId === null || maxId === null || compareIds(minId, delivered) > 0) continue;
    // Entries after the earliest last-delivered id were counted above as not yet received by some group.
    const end = compareIds(maxId, delivered) > 0 ? delivered : maxId;
    const parts = Math.ceil(Number(pendingCount) / perUnit);
    units.push(...splitRange(minId, end, parts).map((range) => (reader: StreamReader) => readPending(reader, stream, group.name, range, batchSize, tally.matcher, pending, remember?.note(group.name))));
  }
  return units;
}

/**
 * After a stream was read whole into `memory`: the pending entries it counted as undelivered (after
 * the earliest group's last-delivered id, in a later group's pending list) are marked as held by
 * that group, so the next count knows where they are.
 */
async function notePendingAfterDelivered(reader: StreamReader, stream: string, memory: StreamMemory, batchSize: number): Promise<void> {
  const delivered = earliestDelivered(memory.info);
  if (delivered === null) return;
  for (const group of memory.info.groups) {
    if (compareIds(group.lastDelivered, delivered) <= 0) continue;
    const mark = memory.mark(group.name);
    await pendingIds(reader, stream, group.name, { start: `(${delivered}`, end: group.lastDelivered }, batchSize, (ids) => ids.forEach(mark));
  }
}

/**
 * A broadcast channel's stream: every entry (a fresh group re-reads them all), and for each existing
 * group the entries after its last-delivered id and those in its pending list.
 */
async function planBroadcast(redis: Redis, tally: Tally, stream: string, options: BacklogOptions): Promise<Unit[]> {
  const { batchSize } = options;
  const retained = tally.source(stream, 'broadcast-retained');
  const units: Unit[] = [(reader) => readRange(reader, stream, { start: '-', end: '+' }, batchSize, tally.matcher, retained)];
  for (const [group, delivered] of await consumerGroups(redis, stream)) {
    const undelivered = tally.source(stream, 'broadcast-undelivered', group);
    units.push((reader) => readRange(reader, stream, { start: `(${delivered}`, end: '+' }, batchSize, tally.matcher, undelivered));
    const [pendingCount, minId, maxId] = (await redis.xpending(stream, group)) as [number, string | null, string | null];
    if (!pendingCount || minId === null || maxId === null) continue;
    const pending = tally.source(stream, 'broadcast-pending', group);
    units.push((reader) => readPending(reader, stream, group, { start: minId, end: maxId }, batchSize, tally.matcher, pending));
  }
  return units;
}

/**
 * A delayed set in units of `perUnit` ranks, each read in pages (a big set is read on several
 * connections at once, and first, so no connection is left reading it alone at the end).
 */
async function planDelayed(redis: Redis, tally: Tally, key: string, options: BacklogOptions): Promise<Unit[]> {
  const count = tally.source(key, 'delayed');
  const size = await redis.zcard(key);
  const perUnit = options.entriesPerUnit ?? ENTRIES_PER_UNIT;
  const units = Math.max(1, Math.ceil(size / perUnit));
  // the last unit reads on to the end: members added meanwhile are counted, not lost
  return Array.from({ length: units }, (_, index) => (reader: StreamReader) => readDelayed(reader, key, { from: index * perUnit, to: index === units - 1 ? Number.POSITIVE_INFINITY : (index + 1) * perUnit }, options.batchSize, tally.matcher, count));
}

/** Runs `work` on `concurrency` dedicated connections, each taking the next unit when it is done. */
async function runUnits(endpoint: RedisEndpoint, work: Unit[], concurrency: number): Promise<void> {
  if (work.length === 0) return;
  const workers = Math.max(1, Math.min(concurrency, work.length));
  await Promise.all(
    Array.from({ length: workers }, async () => {
      const reader = await StreamReader.open(endpoint);
      try {
        for (let next = work.shift(); next; next = work.shift()) await next(reader);
      } finally {
        reader.close();
      }
    }),
  );
}

/**
 * Streams are read on `concurrency` dedicated connections at once, so Redis builds one reply while
 * we parse another (Redis runs commands one at a time; the overlap is what buys throughput).
 */
export async function countBacklog(redis: Redis, endpoint: RedisEndpoint, options: BacklogOptions & { readonly concurrency?: number; readonly memory?: BacklogMemory }): Promise<BacklogReport> {
  const keys = stemKeys(options.namespace);
  const tally = new Tally(options);
  const memory = options.memory && !options.memory.busy ? options.memory : undefined;
  if (memory) memory.busy = true;
  try {
    const streams = (await scanKeys(redis, keys.streamPattern, 'stream')).filter((stream) => {
      const queue = keys.queueOfStream(stream);
      return queue !== null && !isStemControlQueue(queue, options.controlNamespaces);
    });
    const delayed = (await scanKeys(redis, keys.delayedPattern, 'zset')).filter((key) => {
      const queue = keys.queueOf(key, 'delayed');
      return queue !== null && !isStemControlQueue(queue, options.controlNamespaces);
    });
    const broadcasts = await scanKeys(redis, keys.broadcastPattern, 'stream');
    const readWhole: { key: string; reason: string }[] = [];
    const remembered = new Map<string, StreamMemory>();
    const afterUnits: Unit[] = [];
    const streamUnits = await Promise.all(
      streams.map(async (stream): Promise<Unit[]> => {
        const info = await streamInfo(redis, stream);
        if (!info) return []; // deleted since the scan found it: nothing to count, nothing to remember
        const known = memory?.streams.get(stream);
        const stale = !rememberable(info) ? 'too many consumer groups' : known ? staleReason(known.info, info) : 'not read before';
        if (known && stale === null) {
          const counters = { undelivered: tally.source(stream, 'stream'), pending: info.groups.length > 0 ? tally.source(stream, 'pending') : null };
          return [async (reader) => void remembered.set(stream, await rescanStream(reader, stream, known, info, options.batchSize, tally.matcher, counters))];
        }
        const fresh = memory && rememberable(info) ? new StreamMemory(info) : undefined; // else read whole each time
        if (memory) readWhole.push({ key: stream, reason: stale as string });
        if (fresh) {
          remembered.set(stream, fresh);
          afterUnits.push((reader) => notePendingAfterDelivered(reader, stream, fresh, options.batchSize));
        }
        return planStream(redis, tally, stream, info, options, fresh);
      }),
    );
    const broadcastUnits = await Promise.all(broadcasts.map((stream) => planBroadcast(redis, tally, stream, options)));
    const delayedUnits = await Promise.all(delayed.map((key) => planDelayed(redis, tally, key, options)));
    const concurrency = options.concurrency ?? 4;
    await runUnits(endpoint, [...delayedUnits.flat(), ...streamUnits.flat(), ...broadcastUnits.flat()], concurrency);
    await runUnits(endpoint, afterUnits, concurrency);
    if (memory) {
      memory.streams.clear();
      for (const [stream, kept] of remembered) memory.streams.set(stream, kept);
    }
    const bySource = tally.bySource.sort((a, b) => a.key.localeCompare(b.key) || a.source.localeCompare(b.source) || (a.group ?? '').localeCompare(b.group ?? ''));
    return { total: tally.total, retained: tally.retained, bySource, ...(memory ? { readWhole } : {}) };
  } catch (error) {
    // half-read: nothing of this count may be built on
    memory?.streams.clear();
    throw error;
  } finally {
    if (memory) memory.busy = false;
  }
}

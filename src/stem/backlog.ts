/**
 * Envelopes still queued in Stem's Redis, counted by signing key (stem-interop §2.6): stream
 * entries not yet delivered to the consumer group, pending (delivered, unacknowledged) entries, and
 * delayed ZSET members. Read in pages; memory is bounded by a page, not by the backlog.
 */
import type { Redis } from 'ioredis';
import type { RedisEndpoint } from '../endpoints/schema.js';
import { isStemControlQueue, stemKeys } from './redis-keys.js';
import { SIGNATURE_KEY_HEADER } from './canonical.js';
import { consumerGroups, scanKeys } from './redis-scan.js';
import { compareIds } from './stream-format.js';
import { StreamReader, type EntryView } from './stream-reader.js';
import { KeyIdMatcher, type Signer } from './resp.js';
import { EnvelopeScan } from './envelope-scan.js';

export interface BacklogCount {
  scanned: number;
  /** Signed with one of the counted keys. */
  signed: number;
  /** Of those, enqueued after the cut-off time. */
  signedAfter: number;
  unsigned: number;
  unparseable: number;
}

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

export function emptyCount(): BacklogCount {
  return { scanned: 0, signed: 0, signedAfter: 0, unsigned: 0, unparseable: 0 };
}

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
    const overall = source === 'broadcast-retained' ? this.retained : this.total;
    return (signer, enqueuedAt) => {
      count.scanned += 1;
      overall.scanned += 1;
      if (signer === 'other') return;
      if (signer === 'unparseable') {
        count.unparseable += 1;
        overall.unparseable += 1;
      } else if (signer === 'unsigned') {
        count.unsigned += 1;
        overall.unsigned += 1;
      } else {
        count.signed += 1;
        overall.signed += 1;
        const text = enqueuedAt();
        const at = typeof text === 'string' ? Date.parse(text) : Number.NaN;
        if (Number.isNaN(at) || at > this.afterMs) {
          count.signedAfter += 1;
          overall.signedAfter += 1;
        }
      }
    };
  }
}

type Counter = (signer: Signer, enqueuedAt: () => unknown) => void;

type Unit = (reader: StreamReader) => Promise<void>;

export const ENTRIES_PER_UNIT = 50_000;


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

async function readUndelivered(reader: StreamReader, stream: string, range: { start: string; end: string }, batchSize: number, matcher: KeyIdMatcher, count: Counter): Promise<void> {
  for (let start = range.start; ; ) {
    let seen = 0;
    const last = await reader.entries([['XRANGE', stream, start, range.end, 'COUNT', String(batchSize)]], (entry) => {
      seen += 1;
      count(entry.signer(matcher), () => entry.enqueuedAt());
    });
    if (seen < batchSize || last === null) break;
    start = `(${last}`;
  }
}

async function readPendingIds(reader: StreamReader, stream: string, group: string, range: { start: string; end: string }, batchSize: number, matcher: KeyIdMatcher, count: Counter): Promise<void> {
  const onPending = (entry: EntryView) => count(entry.signer(matcher), () => entry.enqueuedAt());
  const xpending = (start: string) => ['XPENDING', stream, group, start, range.end, String(batchSize)];
  let ids = await reader.strings(xpending(range.start));
  while (ids.length > 0) {
    // Pipelined: this batch's range read, and the next batch's ids.
    const more = ids.length === batchSize;
    reader.send([['XRANGE', stream, ids[0] as string, ids[ids.length - 1] as string, 'COUNT', String(ids.length * 2)], ...(more ? [xpending(`(${ids[ids.length - 1]}`)] : [])]);
    const missed = await readPendingRange(reader, ids, onPending);
    const next = more ? await reader.readStrings() : [];
    await reader.entries(missed.map((id) => ['XRANGE', stream, id, id]), onPending);
    ids = next;
  }
}

function field(reply: unknown[], name: string): unknown {
  for (let i = 0; i + 1 < reply.length; i += 2) if (reply[i] === name) return reply[i + 1];
  return undefined;
}

/**
 * The units of work for one stream: entries some group has not received, and the groups' pending
 * entries. A stream can have more than one group: queue `emails` at priority 3 and a queue named
 * `emails:p3` share `<ns>:stream:emails:p3` (stem-interop-2 §7.1), so every group of the stream
 * counts, each entry once.
 */
async function planStream(redis: Redis, tally: Tally, stream: string, options: BacklogOptions): Promise<Unit[]> {
  const { batchSize } = options;
  const perUnit = options.entriesPerUnit ?? ENTRIES_PER_UNIT;
  const info = (await redis.xinfo('STREAM', stream)) as unknown[];
  const length = Number(field(info, 'length') ?? 0);
  const lastId = String(field(info, 'last-generated-id') ?? '+');
  const groups = await consumerGroups(redis, stream);
  const delivered = groups.size === 0 ? null : [...groups.values()].sort(compareIds)[0] as string;
  const undelivered = tally.source(stream, 'stream');
  const from = delivered === null ? '-' : `(${delivered}`;
  const firstEntry = field(info, 'first-entry');
  const firstId = Array.isArray(firstEntry) ? String(firstEntry[0]) : '-';
  const undeliveredFrom = from === '-' ? firstId : from;
  const units: Unit[] = splitRange(undeliveredFrom, lastId, Math.ceil(length / perUnit)).map((range, index, all) => (reader) =>
    readUndelivered(reader, stream, index === all.length - 1 ? { ...range, end: '+' } : range, batchSize, tally.matcher, undelivered),
  );
  if (delivered === null) return units;
  const pending = tally.source(stream, 'pending');
  for (const group of groups.keys()) {
    const [pendingCount, minId, maxId] = (await redis.xpending(stream, group)) as [number, string | null, string | null];
    if (!pendingCount || minId === null || maxId === null || compareIds(minId, delivered) > 0) continue;
    // Entries after the earliest last-delivered id were counted above as not yet received by some group.
    const end = compareIds(maxId, delivered) > 0 ? delivered : maxId;
    const parts = Math.ceil(Number(pendingCount) / perUnit);
    units.push(...splitRange(minId, end, parts).map((range) => (reader: StreamReader) => readPendingIds(reader, stream, group, range, batchSize, tally.matcher, pending)));
  }
  return units;
}

/**
 * A broadcast channel's stream: every entry (a fresh group re-reads them all), and for each existing
 * group the entries after its last-delivered id and those in its pending list.
 */
async function planBroadcast(redis: Redis, tally: Tally, stream: string, options: BacklogOptions): Promise<Unit[]> {
  const { batchSize } = options;
  const retained = tally.source(stream, 'broadcast-retained');
  const units: Unit[] = [(reader) => readUndelivered(reader, stream, { start: '-', end: '+' }, batchSize, tally.matcher, retained)];
  for (const [group, delivered] of await consumerGroups(redis, stream)) {
    const undelivered = tally.source(stream, 'broadcast-undelivered', group);
    units.push((reader) => readUndelivered(reader, stream, { start: `(${delivered}`, end: '+' }, batchSize, tally.matcher, undelivered));
    const [pendingCount, minId, maxId] = (await redis.xpending(stream, group)) as [number, string | null, string | null];
    if (!pendingCount || minId === null || maxId === null) continue;
    const pending = tally.source(stream, 'broadcast-pending', group);
    units.push((reader) => readPendingIds(reader, stream, group, { start: minId, end: maxId }, batchSize, tally.matcher, pending));
  }
  return units;
}

/**
 * Pending entries are usually contiguous (recently delivered, in flight), so a batch's id range is
 * read in one XRANGE and the pending ones kept by walking both sorted lists together. Returns the
 * pending ids the range read did not reach (acknowledged entries in between), to fetch one by one.
 */
async function readPendingRange(reader: StreamReader, ids: readonly string[], onEntry: (entry: EntryView) => void): Promise<string[]> {
  let next = 0;
  const missed: string[] = [];
  await reader.readEntries((entry) => {
    const id = entry.id();
    // pending ids no longer in the stream (deleted) are passed over; usually the next one is this entry
    if (ids[next] !== id) while (next < ids.length && compareIds(ids[next] as string, id) < 0) missed.push(ids[next++] as string);
    if (next < ids.length && ids[next] === id) {
      next += 1;
      onEntry(entry);
    }
  });
  return [...missed, ...ids.slice(next)];
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
  return Array.from({ length: units }, (_, index) => (reader: StreamReader) => scanDelayed(reader, tally, key, { from: index * perUnit, to: index === units - 1 ? Number.POSITIVE_INFINITY : (index + 1) * perUnit }, options.batchSize, count));
}

async function scanDelayed(reader: StreamReader, tally: Tally, key: string, ranks: { from: number; to: number }, batchSize: number, count: Counter): Promise<void> {
  const member = new EnvelopeScan();
  const onMember = (buffer: Buffer, start: number, end: number) => {
    if (member.scan(buffer, start, end)) {
      count(member.signer(tally.matcher), () => member.enqueuedAt());
      return;
    }
    let envelope: { headers?: Record<string, unknown>; enqueuedAt?: unknown } | null = null;
    try {
      envelope = JSON.parse(buffer.toString('utf8', start, end));
    } catch {
      envelope = null;
    }
    const headers = envelope?.headers;
    const keyId = typeof headers !== 'object' || headers === null ? undefined : typeof headers[SIGNATURE_KEY_HEADER] === 'string' ? (headers[SIGNATURE_KEY_HEADER] as string) : null;
    count(tally.matcher.ofKeyId(keyId), () => envelope?.enqueuedAt);
  };
  for (let rank = ranks.from; rank < ranks.to; rank += batchSize) {
    const last = Math.min(rank + batchSize, ranks.to) - 1;
    const members = await reader.bulks(['ZRANGE', key, String(rank), String(last)], onMember);
    if (members < last - rank + 1) break;
  }
}

/**
 * Streams are read on `concurrency` dedicated connections at once, so Redis builds one reply while
 * we parse another (Redis runs commands one at a time; the overlap is what buys throughput).
 */
export async function countBacklog(redis: Redis, endpoint: RedisEndpoint, options: BacklogOptions & { readonly concurrency?: number }): Promise<BacklogReport> {
  const keys = stemKeys(options.namespace);
  const tally = new Tally(options);
  const streams = (await scanKeys(redis, keys.streamPattern, 'stream')).filter((stream) => {
    const queue = keys.queueOfStream(stream);
    return queue !== null && !isStemControlQueue(queue, options.controlNamespaces);
  });
  const delayed = (await scanKeys(redis, keys.delayedPattern, 'zset')).filter((key) => {
    const queue = keys.queueOf(key, 'delayed');
    return queue !== null && !isStemControlQueue(queue, options.controlNamespaces);
  });
  const broadcasts = await scanKeys(redis, keys.broadcastPattern, 'stream');
  const streamUnits = await Promise.all(streams.map((stream) => planStream(redis, tally, stream, options)));
  const broadcastUnits = await Promise.all(broadcasts.map((stream) => planBroadcast(redis, tally, stream, options)));
  const delayedUnits = await Promise.all(delayed.map((key) => planDelayed(redis, tally, key, options)));
  const work: Unit[] = [...delayedUnits.flat(), ...streamUnits.flat(), ...broadcastUnits.flat()];
  const workers = Math.max(1, Math.min(options.concurrency ?? 4, work.length));
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
  return { total: tally.total, retained: tally.retained, bySource: tally.bySource.sort((a, b) => a.key.localeCompare(b.key) || a.source.localeCompare(b.source) || (a.group ?? '').localeCompare(b.group ?? '')) };
}

/**
 * Incremental backlog evidence. A stream's old entries change in few ways: a group receives them
 * (undelivered → pending), acknowledges them (they leave the backlog, never to return), or they are
 * deleted or trimmed. So an evaluation remembers, per stream, how far it read and the entries that
 * matter — signed with a counted key, unsigned or unparseable — with the groups whose pending list
 * holds each; the next one reads only what was appended since, and settles the remembered entries:
 *
 * - trimmed (before the first entry) or deleted entries are dropped — looked up only when
 *   `entries-added` − `length` (every entry ever removed) moved, and only up to `max-deleted-entry-id`;
 * - a group that acknowledged nothing since — its pending count grew by exactly what it read
 *   (`entries-read`) — still holds what it held, plus what it received since; any other group's
 *   pending list is read again (ids only);
 * - an entry no group holds any more has left the backlog.
 *
 * A stream is read whole again when what was remembered cannot be trusted: Redis < 7 (no
 * `entries-added`), fewer entries added than before or ids that went back (recreated), its first
 * entry before the remembered one, a group added, removed or rewound, more than 28 groups.
 * Delayed sets and broadcast channels are always read whole: a sorted set has no "added since".
 */
import type { KeyIdMatcher, Signer } from './resp.js';
import { compareIds } from './stream-format.js';
import type { StreamReader } from './stream-reader.js';
import { type Counter, type GroupInfo, type Note, type StreamInfo, earliestDelivered, pendingIds, readRange } from './backlog-read.js';

const NOTED: readonly Signer[] = ['counted', 'unsigned', 'unparseable'];
const MAX_GROUPS = 28;

/** One stream's remembered state: what XINFO said when it was read, and its notable entries. */
export class StreamMemory {
  readonly info: StreamInfo;
  /** id → signer (bits 0–1), enqueued after the cut-off (bit 2), a bit per group whose pending list holds it (from bit 3). */
  readonly notable: Map<string, number>;

  constructor(info: StreamInfo, notable = new Map<string, number>()) {
    this.info = info;
    this.notable = notable;
  }

  private bit(group: string): number {
    return 1 << (3 + this.info.groups.findIndex((g) => g.name === group));
  }

  /** A reader's Note: an entry read in range (no group) or from `group`'s pending list. */
  note(group?: string): Note {
    const bit = group === undefined ? 0 : this.bit(group);
    return (id, signer, after) => {
      this.notable.set(id, (this.notable.get(id) ?? (NOTED.indexOf(signer) | (after ? 4 : 0))) | bit);
    };
  }

  /** Marks a remembered entry as held in `group`'s pending list (ids not remembered are passed over). */
  mark(group: string): (id: string) => void {
    const bit = this.bit(group);
    return (id) => {
      const code = this.notable.get(id);
      if (code !== undefined) this.notable.set(id, code | bit);
    };
  }

  /** Forgets which entries `group`'s pending list holds. */
  unmarkAll(group: string): void {
    const keep = ~this.bit(group);
    for (const [id, code] of this.notable) this.notable.set(id, code & keep);
  }
}

/** Remembered streams of one evaluation series (one broker, namespace, set of keys and cut-off). */
export class BacklogMemory {
  readonly streams = new Map<string, StreamMemory>();
  /** Set while an evaluation uses it: a second one at the same time reads whole and remembers nothing. */
  busy = false;
}

/** Whether a stream can be remembered at all: its groups must fit the bits of an entry's code. */
export function rememberable(info: StreamInfo): boolean {
  return info.groups.length <= MAX_GROUPS;
}

/** Why `then` cannot be built on for `now`, or null when it can. */
export function staleReason(then: StreamInfo, now: StreamInfo): string | null {
  if (then.entriesAdded === null || now.entriesAdded === null) return 'Redis reports no entries-added (before 7.0)';
  if (now.entriesAdded < then.entriesAdded || compareIds(now.lastId, then.lastId) < 0) return 'recreated';
  if (now.firstId !== null && (then.firstId === null ? compareIds(now.firstId, then.lastId) <= 0 : compareIds(now.firstId, then.firstId) < 0)) return 'recreated';
  if (now.groups.length !== then.groups.length) return 'consumer groups changed';
  for (const [index, group] of now.groups.entries()) {
    const before = then.groups[index] as GroupInfo;
    if (before.name !== group.name) return 'consumer groups changed';
    if (compareIds(group.lastDelivered, before.lastDelivered) < 0) return `group ${group.name} was rewound`;
  }
  return null;
}

/** Whether nothing left `group`'s pending list since `before`: it grew by exactly what the group read. */
function acknowledgedNothing(before: GroupInfo, now: GroupInfo): boolean {
  return before.entriesRead !== null && now.entriesRead !== null && before.pending + (now.entriesRead - before.entriesRead) === now.pending;
}

export interface RescanCounters {
  readonly undelivered: Counter;
  readonly pending: Counter | null;
}

/**
 * Brings `memory` up to `now` — reading the entries appended since and whatever the changes above
 * require — and counts the stream's backlog into `counters`. Returns the memory for next time.
 */
export async function rescanStream(reader: StreamReader, stream: string, memory: StreamMemory, now: StreamInfo, batchSize: number, matcher: KeyIdMatcher, counters: RescanCounters): Promise<StreamMemory> {
  const then = memory.info;
  const next = new StreamMemory(now, memory.notable);
  const { notable } = next;
  for (const id of notable.keys()) if (now.firstId === null || compareIds(id, now.firstId) < 0) notable.delete(id); // trimmed
  // entries-added − length counts every entry deleted or trimmed: unchanged, nothing was
  // (max-deleted-entry-id alone misses a deletion below an earlier one)
  if (removed(now) !== removed(then)) await dropDeleted(reader, stream, notable, now.maxDeletedId);
  // Appended since: the notable ones are remembered (and counted below with the rest); of the
  // others only those no group has received yet are in the backlog.
  const delivered = earliestDelivered(now);
  const classify = counters.undelivered;
  const received = delivered === null || compareIds(delivered, then.lastId) <= 0 ? null : delivered;
  if (received !== null) {
    await readRange(reader, stream, { start: `(${then.lastId}`, end: received }, batchSize, matcher, { envelope: (signer, read) => classify.isAfter(signer, read) }, next.note());
  }
  const newest = received === null || compareIds(received, now.lastId) < 0 ? `(${received ?? then.lastId}` : null;
  if (newest !== null) {
    await readRange(reader, stream, { start: newest, end: now.lastId }, batchSize, matcher, {
      envelope: (signer, read) => {
        if (signer === 'other') classify.add('other', false);
        return classify.isAfter(signer, read);
      },
    }, next.note());
  }
  for (const [index, group] of now.groups.entries()) {
    const before = then.groups[index] as GroupInfo;
    if (acknowledgedNothing(before, group)) {
      // it still holds what it held, and now also what it received since
      const mark = next.mark(group.name);
      for (const id of notable.keys()) if (compareIds(id, before.lastDelivered) > 0 && compareIds(id, group.lastDelivered) <= 0) mark(id);
    } else {
      next.unmarkAll(group.name);
      const mark = next.mark(group.name);
      await pendingIds(reader, stream, group.name, { start: '-', end: group.lastDelivered }, batchSize, (ids) => ids.forEach(mark));
    }
  }
  for (const [id, code] of notable) {
    const signer = NOTED[code & 3] as Signer;
    const after = (code & 4) !== 0;
    if (delivered === null || compareIds(id, delivered) > 0) {
      counters.undelivered.add(signer, after);
      continue;
    }
    const groups = code >>> 3;
    if (groups === 0) notable.delete(id); // every group received and acknowledged it: it left the backlog for good
    for (let bits = groups; bits !== 0; bits &= bits - 1) counters.pending?.add(signer, after);
  }
  return next;
}

function removed(info: StreamInfo): number {
  return (info.entriesAdded ?? 0) - info.length;
}

/** Drops remembered entries that are no longer in the stream (only those up to the last deleted id can be). */
async function dropDeleted(reader: StreamReader, stream: string, notable: Map<string, number>, maxDeletedId: string | null): Promise<void> {
  const candidates = [...notable.keys()].filter((id) => maxDeletedId === null || compareIds(id, maxDeletedId) <= 0);
  for (let start = 0; start < candidates.length; start += 1000) {
    const batch = candidates.slice(start, start + 1000);
    const present = new Set<string>();
    await reader.entries(
      batch.map((id) => ['XRANGE', stream, id, id]),
      (entry) => void present.add(entry.id()),
    );
    for (const id of batch) if (!present.has(id)) notable.delete(id);
  }
}

/**
 * A memory as the ring's state keeps it between processes (`run --once` from a CronJob): only when it
 * is small — each remembered entry is ~25 bytes of state — else the next process reads whole.
 * `key` names the broker, namespace, keys and cut-off it belongs to (a hash: no URL in the state).
 */
export interface PersistedMemory {
  readonly key: string;
  readonly streams: Readonly<Record<string, { readonly info: StreamInfo; readonly notable: string }>>;
}

export const PERSISTED_ENTRIES = 4000;

export function persistMemory(memory: BacklogMemory, key: string): PersistedMemory | null {
  let entries = 0;
  for (const stream of memory.streams.values()) entries += stream.notable.size;
  if (entries > PERSISTED_ENTRIES) return null;
  const streams = [...memory.streams].map(([name, stream]) => [name, { info: stream.info, notable: [...stream.notable].map(([id, code]) => `${id}=${code}`).join(' ') }] as const);
  return { key, streams: Object.fromEntries(streams) };
}

const ID = /^\d+-\d+$/;

function restoredInfo(value: unknown): StreamInfo | null {
  const info = value as Partial<Record<keyof StreamInfo, unknown>> | null;
  if (typeof info !== 'object' || info === null || !Array.isArray(info.groups)) return null;
  const idOrNull = (id: unknown) => id === null || (typeof id === 'string' && ID.test(id));
  const numberOrNull = (n: unknown) => n === null || (typeof n === 'number' && Number.isInteger(n) && n >= 0);
  const groupsValid = info.groups.every((group: Partial<Record<keyof GroupInfo, unknown>> | null) => typeof group === 'object' && group !== null && typeof group.name === 'string' && typeof group.lastDelivered === 'string' && ID.test(group.lastDelivered) && typeof group.pending === 'number' && numberOrNull(group.entriesRead));
  const valid = typeof info.length === 'number' && idOrNull(info.firstId) && typeof info.lastId === 'string' && ID.test(info.lastId) && numberOrNull(info.entriesAdded) && idOrNull(info.maxDeletedId) && groupsValid;
  return valid ? (info as unknown as StreamInfo) : null;
}

/**
 * Fills an empty `memory` from what a ring's state kept, when it belongs to `key`; anything that does
 * not read exactly as persistMemory wrote it is ignored (the count then reads whole).
 */
export function restoreMemory(memory: BacklogMemory, value: unknown, key: string): void {
  const persisted = value as Partial<PersistedMemory> | null | undefined;
  if (memory.streams.size > 0 || typeof persisted !== 'object' || persisted === null || persisted.key !== key || typeof persisted.streams !== 'object' || persisted.streams === null) return;
  const restored = new Map<string, StreamMemory>();
  for (const [name, stream] of Object.entries(persisted.streams)) {
    const info = restoredInfo(stream?.info);
    if (!info || !rememberable(info) || typeof stream.notable !== 'string') return;
    const notable = new Map<string, number>();
    for (const pair of stream.notable === '' ? [] : stream.notable.split(' ')) {
      const [id, code] = pair.split('=');
      const value = Number(code);
      if (!id || !ID.test(id) || !Number.isInteger(value) || value < 0 || (value & 3) > 2 || value >>> 3 >= 2 ** info.groups.length) return;
      notable.set(id, value);
    }
    restored.set(name, new StreamMemory(info, notable));
  }
  for (const [name, stream] of restored) memory.streams.set(name, stream);
}

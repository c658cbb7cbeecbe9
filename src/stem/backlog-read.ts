/**
 * Reading and counting Stem's queued envelopes in Redis: the counters, and the page readers for
 * stream ranges, pending lists and delayed sets. `countBacklog` (backlog.ts) plans which of these
 * run; backlog-memory.ts re-reads only what changed.
 */
import type { Redis } from 'ioredis';
import { SIGNATURE_KEY_HEADER } from './canonical.js';
import { EnvelopeScan } from './envelope-scan.js';
import type { KeyIdMatcher, Signer } from './resp.js';
import { compareIds } from './stream-format.js';
import type { EntryView, StreamReader } from './stream-reader.js';

export interface BacklogCount {
  scanned: number;
  /** Signed with one of the counted keys. */
  signed: number;
  /** Of those, enqueued after the cut-off time. */
  signedAfter: number;
  unsigned: number;
  unparseable: number;
}

export function emptyCount(): BacklogCount {
  return { scanned: 0, signed: 0, signedAfter: 0, unsigned: 0, unparseable: 0 };
}

/** An envelope as read: its enqueuedAt, decoded only when asked (an EntryView, an EnvelopeScan). */
export interface Enqueued {
  enqueuedAt(): unknown;
}

/** What a reader reports each envelope to; returns whether it counts as enqueued after the cut-off. */
export interface EnvelopeSink {
  envelope(signer: Signer, read: Enqueued): boolean;
}

/** Counts envelopes of one source into its own count and the overall one. */
export class Counter implements EnvelopeSink {
  private readonly into: readonly BacklogCount[];
  private readonly afterMs: number;

  constructor(into: readonly BacklogCount[], afterMs: number) {
    this.into = into;
    this.afterMs = afterMs;
  }

  /** One envelope read; its enqueuedAt is only asked of counted ones. Returns whether it counts as enqueued after the cut-off. */
  envelope(signer: Signer, read: Enqueued): boolean {
    const after = this.isAfter(signer, read);
    this.add(signer, after);
    return after;
  }

  /** Whether a counted envelope was enqueued after the cut-off (an unreadable time counts as after). */
  isAfter(signer: Signer, read: Enqueued): boolean {
    if (signer !== 'counted') return false;
    const text = read.enqueuedAt();
    const at = typeof text === 'string' ? Date.parse(text) : Number.NaN;
    return Number.isNaN(at) || at > this.afterMs;
  }

  /** One envelope classified before (remembered from an earlier evaluation). */
  add(signer: Signer, after: boolean): void {
    for (const count of this.into) {
      count.scanned += 1;
      if (signer === 'unparseable') count.unparseable += 1;
      else if (signer === 'unsigned') count.unsigned += 1;
      else if (signer === 'counted') {
        count.signed += 1;
        if (after) count.signedAfter += 1;
      }
    }
  }
}

/** Where a reader reports each envelope that is not simply signed with another key, to remember it. */
export type Note = (id: string, signer: Signer, after: boolean) => void;

function countEntry(entry: EntryView, matcher: KeyIdMatcher, count: EnvelopeSink, note: Note | undefined): void {
  const signer = entry.signer(matcher);
  const after = count.envelope(signer, entry);
  if (note && signer !== 'other') note(entry.id(), signer, after);
}

/** Every entry of a stream range, in pages of `batchSize`. */
export async function readRange(reader: StreamReader, stream: string, range: { start: string; end: string }, batchSize: number, matcher: KeyIdMatcher, count: EnvelopeSink, note?: Note): Promise<void> {
  for (let start = range.start; ; ) {
    let seen = 0;
    const last = await reader.entries([['XRANGE', stream, start, range.end, 'COUNT', String(batchSize)]], (entry) => {
      seen += 1;
      countEntry(entry, matcher, count, note);
    });
    if (seen < batchSize || last === null) break;
    start = `(${last}`;
  }
}

/** A group's pending ids in a range, in pages (XPENDING's extended form; the ids only). */
export async function pendingIds(reader: StreamReader, stream: string, group: string, range: { start: string; end: string }, batchSize: number, onPage: (ids: readonly string[]) => Promise<void> | void): Promise<void> {
  const xpending = (start: string) => ['XPENDING', stream, group, start, range.end, String(batchSize)];
  let ids = await reader.strings(xpending(range.start));
  while (ids.length > 0) {
    await onPage(ids);
    ids = ids.length === batchSize ? await reader.strings(xpending(`(${ids[ids.length - 1]}`)) : [];
  }
}

/** A group's pending entries in a range, read whole and counted (ids no longer in the stream are passed over). */
export async function readPending(reader: StreamReader, stream: string, group: string, range: { start: string; end: string }, batchSize: number, matcher: KeyIdMatcher, count: Counter, note?: Note): Promise<void> {
  const onPending = (entry: EntryView) => countEntry(entry, matcher, count, note);
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

/** Delayed members in a rank range, in pages: each walked by structure, decoded only when it must be. */
export async function readDelayed(reader: StreamReader, key: string, ranks: { from: number; to: number }, batchSize: number, matcher: KeyIdMatcher, count: Counter): Promise<void> {
  const member = new EnvelopeScan();
  const onMember = (buffer: Buffer, start: number, end: number) => {
    if (member.scan(buffer, start, end)) {
      count.envelope(member.signer(matcher), member);
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
    count.envelope(matcher.ofKeyId(keyId), { enqueuedAt: () => envelope?.enqueuedAt });
  };
  for (let rank = ranks.from; rank < ranks.to; rank += batchSize) {
    const last = Math.min(rank + batchSize, ranks.to) - 1;
    const members = await reader.bulks(['ZRANGE', key, String(rank), String(last)], onMember);
    if (members < last - rank + 1) break;
  }
}

/** A stream as XINFO reports it: what tells whether what was remembered of it still holds. */
export interface StreamInfo {
  readonly length: number;
  readonly firstId: string | null;
  readonly lastId: string;
  /** Redis ≥ 7; null before. */
  readonly entriesAdded: number | null;
  readonly maxDeletedId: string | null;
  readonly groups: readonly GroupInfo[];
}

export interface GroupInfo {
  readonly name: string;
  readonly lastDelivered: string;
  readonly pending: number;
  /** Redis ≥ 7, and null when Redis cannot tell. */
  readonly entriesRead: number | null;
}

function fields(reply: unknown[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (let i = 0; i + 1 < reply.length; i += 2) found.set(String(reply[i]), reply[i + 1]);
  return found;
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** The stream's XINFO, or null when it was deleted after it was found (a purged queue holds nothing). */
export async function streamInfo(redis: Redis, stream: string): Promise<StreamInfo | null> {
  let info: unknown[];
  let groups: unknown[][];
  try {
    [info, groups] = await Promise.all([redis.xinfo('STREAM', stream) as Promise<unknown[]>, redis.xinfo('GROUPS', stream) as Promise<unknown[][]>]);
  } catch (error) {
    if (/^ERR no such key/.test((error as Error).message)) return null;
    throw error;
  }
  const stream_ = fields(info);
  const first = stream_.get('first-entry');
  const maxDeleted = stream_.get('max-deleted-entry-id');
  return {
    length: Number(stream_.get('length') ?? 0),
    firstId: Array.isArray(first) ? String(first[0]) : null,
    lastId: String(stream_.get('last-generated-id') ?? '0-0'),
    entriesAdded: numberOrNull(stream_.get('entries-added')),
    maxDeletedId: maxDeleted === undefined || maxDeleted === null ? null : String(maxDeleted),
    groups: groups.map((reply) => {
      const group = fields(reply);
      return { name: String(group.get('name')), lastDelivered: String(group.get('last-delivered-id')), pending: Number(group.get('pending') ?? 0), entriesRead: numberOrNull(group.get('entries-read')) };
    }),
  };
}

/** The earliest last-delivered id of the stream's groups: entries after it some group has not received. */
export function earliestDelivered(info: StreamInfo): string | null {
  return info.groups.length === 0 ? null : (info.groups.map((group) => group.lastDelivered).sort(compareIds)[0] as string);
}

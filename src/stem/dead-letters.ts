/**
 * Stem's dead letters (stem-interop §3.3): LIST `<ns>:dead:<queue>`, newest first (LPUSH), entries
 * `{envelope, reason, meta: {error, keyId?}, deadAt}`. Read in pages, newest first, down to a time.
 */
import type { Redis } from 'ioredis';
import type { Envelope } from './envelope.js';
import { stemKeys } from './redis-keys.js';
import { SIGNATURE_KEY_HEADER } from './canonical.js';
import { parseStemJson } from './json.js';
import { stemInstant } from './timestamps.js';
import type { StemStore } from './sources.js';
import { sqlDeadLetters } from './sql-evidence.js';

export type DlqClass = 'unknown-key' | 'missing-headers' | 'mismatch' | 'mismatch-mutated' | 'bad-base64' | 'other';

export interface DeadLetter {
  readonly queue: string;
  /** The exact list element, for LREM. */
  readonly raw: string;
  readonly envelope: Envelope;
  readonly error: string;
  /** `meta.keyId`, else the envelope's key header, else "none" (unsigned). */
  readonly keyId: string;
  readonly errorClass: DlqClass;
  readonly deadAt: Date | null;
  /** `deadAt` had no zone (stem_redis 0.1.0): read in `timezone`, or as the latest instant it could mean. */
  readonly zoneLess: boolean;
}

/**
 * Stem's four failure messages; a mismatch on an envelope the broker itself changed (attempt > 0 or
 * a notBefore set: lease extension, requeue, replay — §2.7) is not caused by a rotation.
 */
export function classifyFailure(error: string, envelope: Partial<Envelope>): DlqClass {
  if (error.startsWith('unknown signing key')) return 'unknown-key';
  if (error === 'missing signature headers') return 'missing-headers';
  if (error === 'signature header is not base64 encoded') return 'bad-base64';
  if (error === 'signature mismatch') return (envelope.attempt ?? 0) > 0 || (envelope.notBefore ?? null) !== null ? 'mismatch-mutated' : 'mismatch';
  return 'other';
}

export async function listDeadLetterQueues(broker: Redis, namespace: string): Promise<string[]> {
  const keys = stemKeys(namespace);
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await broker.scan(cursor, 'MATCH', keys.deadPattern, 'COUNT', 1000, 'TYPE', 'list');
    cursor = next;
    for (const key of batch) {
      const queue = keys.queueOf(key, 'dead');
      if (queue !== null) found.add(queue);
    }
  } while (cursor !== '0');
  return [...found].sort();
}

export interface DeadLetterScan {
  readonly scanned: number;
  readonly signatureInvalid: DeadLetter[];
  /** Entries in the window that are not JSON or lack the fields: they could hide a failure. */
  readonly malformed: number;
  /** The scan stopped at maxEntries before reaching `since`. */
  readonly truncated: boolean;
  readonly queues: string[];
  /** Dead letters read whose `deadAt` had no zone. */
  readonly zoneLess: number;
}

export interface ScanOptions {
  /** Stop paging a queue once entries are older than this (null: read everything). */
  readonly since: Date | null;
  readonly maxEntries: number;
  readonly pageSize?: number;
  /** Keep only entries for which this returns true (after classification). */
  readonly keep?: (letter: DeadLetter) => boolean;
  /** IANA zone of zone-less `deadAt` values (stem.timezone); null: the latest instant they could mean. */
  readonly timezone?: string | null;
}

function parseEntry(queue: string, raw: string, timezone: string | null): DeadLetter | 'malformed' | 'other-reason' {
  let entry: { envelope?: Envelope; reason?: unknown; meta?: { error?: unknown; keyId?: unknown }; deadAt?: unknown };
  try {
    entry = parseStemJson(raw) as typeof entry;
  } catch {
    return 'malformed';
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.envelope !== 'object' || entry.envelope === null) return 'malformed';
  if (entry.reason !== 'signature-invalid') return 'other-reason';
  const envelope = entry.envelope;
  const error = typeof entry.meta?.error === 'string' ? entry.meta.error : '';
  const header = envelope.headers?.[SIGNATURE_KEY_HEADER];
  const keyId = typeof entry.meta?.keyId === 'string' ? entry.meta.keyId : typeof header === 'string' ? header : 'none';
  const deadAt = typeof entry.deadAt === 'string' ? stemInstant(entry.deadAt, timezone) : null;
  return { queue, raw, envelope, error, keyId, errorClass: classifyFailure(error, envelope), deadAt: deadAt?.at ?? null, zoneLess: deadAt?.zoneLess ?? false };
}

export async function scanDeadLetters(broker: Redis, namespace: string, options: ScanOptions): Promise<DeadLetterScan> {
  const keys = stemKeys(namespace);
  const pageSize = options.pageSize ?? 500;
  const queues = await listDeadLetterQueues(broker, namespace);
  const signatureInvalid: DeadLetter[] = [];
  let scanned = 0;
  let malformed = 0;
  let truncated = false;
  let zoneLess = 0;
  for (const queue of queues) {
    for (let offset = 0; ; offset += pageSize) {
      const size = Math.min(pageSize, options.maxEntries - scanned);
      if (size <= 0) {
        truncated = true;
        break;
      }
      const page = await broker.lrange(keys.dead(queue), offset, offset + size - 1);
      let older = 0;
      for (const raw of page) {
        scanned += 1;
        const parsed = parseEntry(queue, raw, options.timezone ?? null);
        if (parsed === 'malformed') {
          malformed += 1;
          continue;
        }
        if (parsed === 'other-reason') continue;
        if (parsed.zoneLess) zoneLess += 1;
        if (options.since && parsed.deadAt && parsed.deadAt < options.since) {
          older += 1;
          continue;
        }
        if (!options.keep || options.keep(parsed)) signatureInvalid.push(parsed);
      }
      // Newest first: a page entirely older than the window ends this queue.
      if (page.length < size || (options.since && older === page.length)) break;
    }
    if (truncated) break;
  }
  return { scanned, signatureInvalid, malformed, truncated, queues, zoneLess };
}

/** Counts by key id × error class × queue, sorted by count. */
export function groupDeadLetters(letters: readonly DeadLetter[]): { keyId: string; errorClass: DlqClass; queue: string; count: number; newest: string | null }[] {
  const groups = new Map<string, { keyId: string; errorClass: DlqClass; queue: string; count: number; newest: string | null }>();
  for (const letter of letters) {
    const id = `${letter.keyId}\u0000${letter.errorClass}\u0000${letter.queue}`;
    const group = groups.get(id) ?? { keyId: letter.keyId, errorClass: letter.errorClass, queue: letter.queue, count: 0, newest: null };
    group.count += 1;
    const at = letter.deadAt?.toISOString() ?? null;
    if (at && (!group.newest || at > group.newest)) group.newest = at;
    groups.set(id, group);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** Dead letters from Stem's broker, wherever it keeps them: Redis lists or the `stem_dead_letters` table. */
export async function scanStemDeadLetters(broker: StemStore, namespace: string, options: ScanOptions): Promise<DeadLetterScan> {
  if (broker.kind === 'redis') return scanDeadLetters(broker.redis, namespace, options);
  const scan = await sqlDeadLetters(broker.sql, namespace, { since: options.since, maxEntries: options.maxEntries, timezone: options.timezone ?? null });
  return options.keep ? { ...scan, signatureInvalid: scan.signatureInvalid.filter(options.keep) } : scan;
}

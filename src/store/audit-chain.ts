/**
 * The audit trail is a hash chain: every event carries `prev`, the SHA-256 of the exact text of the
 * record stored before it (`genesis` for the first chained one), so a changed, removed or inserted
 * record breaks the chain at the record after it. Both stores append through here and verify with
 * the same walk. A torn record (a crash mid-append) is reported and skipped, never fatal: the next
 * record chains over it, so the events after it are kept.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent } from './types.js';

export const GENESIS = 'genesis';

export function recordHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export interface StoredRecord {
  /** Where it is, for humans: `audit.jsonl line 12`, `stream entry 1700000000000-0`. */
  readonly at: string;
  readonly text: string;
}

export interface AuditProblem {
  readonly at: string;
  readonly problem: string;
}

export interface AuditRead {
  readonly events: AuditEvent[];
  /** Torn or unreadable records, skipped. */
  readonly problems: AuditProblem[];
}

export interface AuditVerification {
  readonly records: number;
  /** Records before the chain began (written by stem-rotor 0.1). */
  readonly unchained: number;
  readonly torn: readonly AuditProblem[];
  readonly firstBreak: AuditProblem | null;
}

function parseEvent(text: string): AuditEvent | null {
  try {
    const value = JSON.parse(text) as AuditEvent;
    return typeof value === 'object' && value !== null && typeof value.ring === 'string' && typeof value.action === 'string' ? value : null;
  } catch {
    return null;
  }
}

export function readRecords(records: readonly StoredRecord[], ring?: string): AuditRead {
  const events: AuditEvent[] = [];
  const problems: AuditProblem[] = [];
  for (const record of records) {
    const event = parseEvent(record.text);
    if (!event) problems.push({ at: record.at, problem: 'torn or unreadable record (skipped)' });
    else if (ring === undefined || event.ring === ring) events.push(event);
  }
  return { events, problems };
}

export function verifyRecords(records: readonly StoredRecord[]): AuditVerification {
  const torn: AuditProblem[] = [];
  let unchained = 0;
  let chained = false;
  let previous: string | null = null;
  for (const record of records) {
    const event = parseEvent(record.text);
    if (!event) {
      torn.push({ at: record.at, problem: 'torn or unreadable record' });
    } else if (event.prev === undefined) {
      if (chained) return { records: records.length, unchained, torn, firstBreak: { at: record.at, problem: 'record has no hash link inside the chain (inserted?)' } };
      unchained += 1;
    } else {
      const expected = previous === null ? GENESIS : recordHash(previous);
      const ok = event.prev === expected || (!chained && event.prev === GENESIS);
      if (!ok) return { records: records.length, unchained, torn, firstBreak: { at: record.at, problem: 'its link does not match the record before it: that record was changed or removed, or this one inserted' } };
      chained = true;
    }
    previous = record.text;
  }
  return { records: records.length, unchained, torn, firstBreak: null };
}

/** The event as stored: the link to the record before it goes in first. */
export function chainedText(event: AuditEvent, previousText: string | null): string {
  return JSON.stringify({ ...event, prev: previousText === null ? GENESIS : recordHash(previousText) });
}

/**
 * The bytes Stem signs (stem-interop §2.2): a compact JSON object with keys sorted by UTF-16 code
 * units at every level, dates as Dart's `toUtc().toIso8601String()`, numbers as Dart prints them
 * (json.ts). Built by hand because `JSON.stringify` enumerates integer-like keys first ("9" before
 * "10" before "a").
 */
import type { Envelope } from './envelope.js';
import { dartNumber, isLosslessNumber, type LosslessNumber } from './json.js';
import { zonedWallToUtcMs } from './timestamps.js';

export const SIGNATURE_HEADER = 'stem-signature';
export const SIGNATURE_KEY_HEADER = 'stem-signature-key';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('NaN and Infinity cannot be signed (Dart jsonEncode throws)');
    return dartNumber(JSON.stringify(value)); // the wire literal, as a worker decodes it
  }
  if (isLosslessNumber(value)) return dartNumber((value as LosslessNumber).value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value as object).sort(byCodeUnits);
    return `{${entries.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  throw new TypeError(`cannot sign a value of type ${typeof value}`);
}

const ISO = /^([+-]\d{6}|\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?\s?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * `DateTime.parse(text).toUtc().toIso8601String()`: at most 6 fractional digits (truncated),
 * milliseconds always three digits, microseconds only when non-zero. Without a zone the text is
 * local time, as in Dart: of this process, or of the worker's IANA `timezone` when given.
 */
export function dartUtcIso(text: string, timezone?: string): string {
  const match = ISO.exec(text.trim());
  if (!match) throw new RangeError(`invalid date "${text}" (Dart DateTime.parse would reject it)`);
  const [, year, month, day, hour = '0', minute = '0', second = '0', fraction = '', zone] = match;
  const micros = Number((fraction + '000000').slice(0, 6));
  const parts = [Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), Math.floor(micros / 1000)] as const;
  let epochMs: number;
  if (zone === undefined && timezone !== undefined) {
    epochMs = zonedWallToUtcMs(Date.UTC(...parts), timezone);
  } else if (zone === undefined) {
    const local = new Date(0);
    local.setFullYear(parts[0], parts[1], parts[2]);
    local.setHours(parts[3], parts[4], parts[5], parts[6]);
    epochMs = local.getTime();
  } else {
    epochMs = Date.UTC(...parts);
    if (parts[0] >= 0 && parts[0] < 100) epochMs = new Date(epochMs).setUTCFullYear(parts[0]);
    if (zone !== 'Z' && zone !== 'z') {
      const sign = zone.startsWith('-') ? -1 : 1;
      const digits = zone.slice(1).replace(':', '');
      epochMs -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0')) * 60_000;
    }
  }
  if (Number.isNaN(epochMs)) throw new RangeError(`invalid date "${text}"`);
  const iso = new Date(epochMs).toISOString();
  const subMillis = micros % 1000;
  return subMillis === 0 ? iso : `${iso.slice(0, -1)}${String(subMillis).padStart(3, '0')}Z`;
}

/**
 * The exact string Stem's `_canonicalize` produces for an envelope, signature headers excluded.
 * `timezone`: the verifying worker's zone, for zone-less times written by Stem before 0.2.
 */
export function canonicalEnvelope(envelope: Envelope, timezone?: string): string {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(envelope.headers)) {
    if (name !== SIGNATURE_HEADER && name !== SIGNATURE_KEY_HEADER) headers[name] = value;
  }
  return canonicalJson({
    args: envelope.args,
    attempt: envelope.attempt,
    enqueuedAt: dartUtcIso(envelope.enqueuedAt, timezone),
    headers,
    id: envelope.id,
    maxRetries: envelope.maxRetries,
    meta: envelope.meta,
    name: envelope.name,
    notBefore: envelope.notBefore === null ? null : dartUtcIso(envelope.notBefore, timezone),
    priority: envelope.priority,
    queue: envelope.queue,
    visibilityTimeoutMs: envelope.visibilityTimeout,
  });
}

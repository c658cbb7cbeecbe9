/** Stem's Redis stream entry format for an envelope (stem-interop §2.6, redis_broker.dart:399-426). */
import type { Envelope } from './envelope.js';
import { parseStemJson, stringifyStemJson } from './json.js';

/** Field/value pairs for XADD, in Stem's order. */
export function streamFields(envelope: Envelope): string[] {
  return [
    'id', envelope.id,
    'name', envelope.name,
    'args', stringifyStemJson(envelope.args),
    'headers', JSON.stringify(envelope.headers),
    'enqueuedAt', envelope.enqueuedAt,
    'notBefore', envelope.notBefore ?? '',
    'priority', String(envelope.priority),
    'attempt', String(envelope.attempt),
    'maxRetries', String(envelope.maxRetries),
    'visibilityTimeout', envelope.visibilityTimeout === null ? '' : String(envelope.visibilityTimeout),
    'queue', envelope.queue,
    'meta', stringifyStemJson(envelope.meta),
  ];
}

/** Stem's `_envelopeFromMap`: the consumer side's defaults. */
export function envelopeFromFields(fields: readonly string[]): Envelope {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
  return {
    id: map.get('id') ?? '',
    name: map.get('name') ?? '',
    args: parseStemJson(map.get('args') || '{}') as Envelope['args'],
    headers: JSON.parse(map.get('headers') || '{}'),
    enqueuedAt: map.get('enqueuedAt') ?? '',
    notBefore: map.get('notBefore') || null,
    priority: Number.parseInt(map.get('priority') ?? '', 10) || 0,
    attempt: Number.parseInt(map.get('attempt') ?? '', 10) || 0,
    maxRetries: Number.parseInt(map.get('maxRetries') ?? '', 10) || 0,
    visibilityTimeout: map.get('visibilityTimeout') ? Number(map.get('visibilityTimeout')) : null,
    queue: map.get('queue') || 'default',
    meta: parseStemJson(map.get('meta') || '{}') as Envelope['meta'],
  };
}

/**
 * Orders Redis stream ids (`<ms>-<seq>`, no leading zeros; a bare `<ms>` is `<ms>-0`) as numbers,
 * without parsing them: a longer digit string is larger, equal lengths compare as text.
 */
export function compareIds(a: string, b: string): number {
  const aDash = a.indexOf('-');
  const bDash = b.indexOf('-');
  const aMs = aDash === -1 ? a : a.slice(0, aDash);
  const bMs = bDash === -1 ? b : b.slice(0, bDash);
  return compareDigits(aMs, bMs) || compareDigits(aDash === -1 ? '0' : a.slice(aDash + 1), bDash === -1 ? '0' : b.slice(bDash + 1));
}

function compareDigits(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

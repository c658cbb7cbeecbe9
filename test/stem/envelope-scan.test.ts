/** The delayed-member scan reads what JSON.parse reads: the same signer and enqueuedAt, or it defers to JSON.parse. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeScan } from '../../src/stem/envelope-scan.js';
import { KeyIdMatcher, type Signer } from '../../src/stem/resp.js';

const matcher = new KeyIdMatcher(['old-20260101-0001', 'ключ-2']);

/** What the backlog counted before the scan existed: JSON.parse of the whole member. */
function decoded(text: string): { signer: Signer; enqueuedAt: unknown } {
  let envelope: { headers?: Record<string, unknown>; enqueuedAt?: unknown } | null = null;
  try {
    envelope = JSON.parse(text);
  } catch {
    envelope = null;
  }
  const headers = envelope?.headers;
  const keyId = typeof headers !== 'object' || headers === null ? undefined : typeof headers['stem-signature-key'] === 'string' ? (headers['stem-signature-key'] as string) : null;
  const enqueuedAt = envelope !== null && typeof envelope === 'object' ? envelope.enqueuedAt : undefined;
  return { signer: matcher.ofKeyId(keyId), enqueuedAt: typeof enqueuedAt === 'string' ? enqueuedAt : null };
}

function scanned(text: string): { signer: Signer; enqueuedAt: unknown } | null {
  const buffer = Buffer.from(`xx${text}yy`, 'utf8');
  const scan = new EnvelopeScan();
  return scan.scan(buffer, 2, buffer.length - 2) ? { signer: scan.signer(matcher), enqueuedAt: scan.enqueuedAt() } : null;
}

const keyIds = fc.constantFrom('old-20260101-0001', 'new-20261128-0002', 'ключ-2', 'old-20260101-0001x', 'a"b', 'a\\b');
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const headers = fc.oneof(
  fc.record({ 'stem-signature': fc.string(), 'stem-signature-key': keyIds }),
  fc.record({ 'stem-signature-key': fc.oneof(keyIds, jsonValue) }, { requiredKeys: [] }),
  fc.dictionary(fc.string(), fc.string()),
  jsonValue,
);
const envelope = fc.record(
  {
    id: fc.string(),
    name: fc.string(),
    // args and meta may hold anything, a `headers` or `stem-signature-key` of their own included
    args: fc.oneof(jsonValue, fc.record({ headers: fc.record({ 'stem-signature-key': keyIds }) })),
    headers,
    enqueuedAt: fc.oneof(fc.constant('2026-11-28T00:00:00.000Z'), fc.string(), jsonValue),
    priority: fc.integer(),
    meta: jsonValue,
  },
  { requiredKeys: ['args'] },
);

describe('EnvelopeScan', () => {
  it('reads the signer and enqueuedAt JSON.parse reads, or defers to it, for any envelope as Dart or a pretty-printer writes it', () => {
    let direct = 0;
    fc.assert(
      fc.property(envelope, fc.constantFrom(0, 2), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        const fast = scanned(text);
        if (fast === null) return;
        direct += 1;
        expect(fast).toEqual(decoded(text));
      }),
      { numRuns: 3000 },
    );
    // over a third are read by the scan itself (the rest hold escapes, no headers or non-object headers), so the comparison is not vacuous
    expect(direct).toBeGreaterThan(1000);
  });

  it('reads plain Stem envelopes itself (no fallback), and defers on escapes, broken or trailing text', () => {
    const plain = JSON.stringify({ id: 't1', name: 'x', args: { headers: { 'stem-signature-key': 'old-20260101-0001' } }, headers: { 'stem-signature': 's', 'stem-signature-key': 'new-20261128-0002' }, enqueuedAt: '2026-11-28T00:00:00.000Z', meta: {} });
    expect(scanned(plain)).toEqual({ signer: 'other', enqueuedAt: '2026-11-28T00:00:00.000Z' });
    expect(scanned(plain.replace('new-20261128-0002', 'old-20260101-0001'))).toEqual({ signer: 'counted', enqueuedAt: '2026-11-28T00:00:00.000Z' });
    expect(scanned(JSON.stringify({ args: [], headers: { 'stem-signature': 'x' } }))).toEqual({ signer: 'unsigned', enqueuedAt: null });
    expect(scanned(JSON.stringify({ args: [], headers: { 'stem-signature-key': 7 } }))).toEqual({ signer: 'unsigned', enqueuedAt: null });
    // repeated keys: the last one counts, as in JSON.parse
    expect(scanned('{"headers":{"stem-signature-key":"old-20260101-0001"},"headers":{"stem-signature-key":"x"}}')).toEqual({ signer: 'other', enqueuedAt: null });
    for (const unusual of ['{"headers":{"stem-signature-key":"old\\u002d20260101-0001"}}', '{"headers":{"a":1}} x', '{"args":[1,2},"headers":{}}', '{"headers":[]}', '{"args":{}}', '[1]', '', '{"headers":{"a":"b"}']) {
      expect(scanned(unusual), unusual).toBeNull();
    }
  });
});

/** Dart's number printing in the canonical form (stem-interop-2 §3), the sheet's table as vectors. */
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalEnvelope, canonicalJson } from '../../src/stem/canonical.js';
import { envelopeSchema } from '../../src/stem/envelope.js';
import { dartNumber, parseStemJson, stringifyStemJson } from '../../src/stem/json.js';
import { envelopeFromFields, streamFields } from '../../src/stem/stream-format.js';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { EXAMPLE_PRIMARY } from './vectors.js';

/** wire literal → what Dart's jsonEncode(jsonDecode(wire)) prints (the sheet's table). */
const TABLE: [string, string][] = [
  ['0', '0'],
  ['-0', '0'],
  ['0.0', '0.0'],
  ['-0.0', '-0.0'],
  ['10', '10'],
  ['10.0', '10.0'],
  ['1e3', '1000.0'],
  ['1E3', '1000.0'],
  ['1.0e2', '100.0'],
  ['100.0', '100.0'],
  ['1e0', '1.0'],
  ['-1.0', '-1.0'],
  ['0.1', '0.1'],
  ['1.5e300', '1.5e+300'],
  ['1e20', '100000000000000000000.0'],
  ['1e21', '1e+21'],
  ['1e-7', '1e-7'],
  ['1e-400', '0.0'],
  ['123456789012345678', '123456789012345678'],
  ['9007199254740993', '9007199254740993'],
  ['9223372036854775807', '9223372036854775807'],
  ['9223372036854775808', '9223372036854776000.0'],
  ['99999999999999999999', '100000000000000000000.0'],
  // the >400 exponent rule: zero mantissa or negative exponent → 0.0, else Infinity
  ['0e500', '0.0'],
  ['-1e-401', '-0.0'],
  [`1${'0'.repeat(450)}e-401`, '0.0'],
];

describe('Dart number printing', () => {
  it.each(TABLE)('%s → %s', (wire, dart) => {
    expect(dartNumber(wire)).toBe(dart);
    expect(canonicalJson(parseStemJson(`{"n":${wire}}`))).toBe(`{"n":${dart}}`);
  });

  it('a number Dart decodes to Infinity cannot be canonicalized (Stem throws before verifying)', () => {
    for (const wire of ['1e309', '-1e309', '2e401']) expect(() => dartNumber(wire)).toThrow(/not finite in Dart/);
  });

  it('plain JS numbers canonicalize as the wire literal JSON.stringify gives them', () => {
    expect(canonicalJson({ a: 1e21, b: 0.5, c: -0, d: 10 })).toBe('{"a":1e+21,"b":0.5,"c":0,"d":10}');
  });

  it('stream fields keep every literal on the way through Redis', () => {
    const envelope = envelopeSchema.parse(parseStemJson('{"id":"t","name":"n","args":{"amount":10.0,"big":9007199254740993},"enqueuedAt":"2026-01-01T00:00:00Z","meta":{"ratio":1e3}}'));
    const fields = streamFields(envelope);
    expect(fields[fields.indexOf('args') + 1]).toBe('{"amount":10.0,"big":9007199254740993}');
    expect(fields[fields.indexOf('meta') + 1]).toBe('{"ratio":1e3}');
    expect(canonicalEnvelope(envelopeFromFields(fields))).toContain('"args":{"amount":10.0,"big":9007199254740993}');
    expect(stringifyStemJson(envelope.args)).toBe('{"amount":10.0,"big":9007199254740993}');
  });
});

describe('envelope verify accepts what a Stem producer signed', () => {
  it('an envelope with doubles, big integers and exponents verifies through the CLI; JSON.parse would have broken it', () => {
    const dir = tempDir();
    const wire = '{"id":"t-1","name":"billing.charge","args":{"amount":10.0,"orderId":9007199254740993,"rate":1e3,"zero":-0.0},"headers":{},"enqueuedAt":"2026-02-24T10:00:00.000Z","notBefore":null,"priority":0,"attempt":0,"maxRetries":0,"visibilityTimeout":null,"queue":"default","meta":{}}';
    // What the worker signs/verifies, written out by the rules of stem-interop.md §2.2 and -2 §3.
    const canonical =
      '{"args":{"amount":10.0,"orderId":9007199254740993,"rate":1000.0,"zero":-0.0},"attempt":0,"enqueuedAt":"2026-02-24T10:00:00.000Z","headers":{},"id":"t-1","maxRetries":0,"meta":{},"name":"billing.charge","notBefore":null,"priority":0,"queue":"default","visibilityTimeoutMs":null}';
    const signature = createHmac('sha256', Buffer.from(EXAMPLE_PRIMARY, 'base64')).update(canonical).digest('base64');
    const signed = wire.replace('"headers":{}', `"headers":{"stem-signature":"${signature}","stem-signature-key":"primary"}`);
    writeFileSync(join(dir, 'signed.json'), signed);
    writeFileSync(join(dir, 'workers.env'), `STEM_SIGNING_KEYS=primary:${EXAMPLE_PRIMARY}\nSTEM_SIGNING_ACTIVE_KEY=primary\n`);
    const verify = cli(['envelope', 'verify', '--file', join(dir, 'workers.env'), '--in', join(dir, 'signed.json')]);
    expect(verify.stdout + verify.stderr).toContain('valid (key "primary")');
    expect(verify.code).toBe(0);
    const naive = createHmac('sha256', Buffer.from(EXAMPLE_PRIMARY, 'base64')).update(JSON.stringify(JSON.parse(canonical))).digest('base64');
    expect(naive).not.toBe(signature);
    // and signing it again keeps the literals and gives Stem's signature
    writeFileSync(join(dir, 'unsigned.json'), wire);
    writeFileSync(join(dir, 'producers.env'), `STEM_SIGNING_KEYS=primary:${EXAMPLE_PRIMARY}\nSTEM_SIGNING_ACTIVE_KEY=primary\n`);
    const sign = cli(['envelope', 'sign', '--file', join(dir, 'producers.env'), '--in', join(dir, 'unsigned.json')]);
    expect(sign.code).toBe(0);
    expect(sign.stdout).toContain('"args":{"amount":10.0,"orderId":9007199254740993,"rate":1e3,"zero":-0.0}');
    expect(sign.stdout).toContain(`"stem-signature":"${signature}"`);
  });
});

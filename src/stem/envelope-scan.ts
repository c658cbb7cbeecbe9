/**
 * A delayed ZSET member is a whole `Envelope.toJson()` (stem-interop §3.3): args come before headers,
 * so the signing key cannot be found by searching the text. This walks the JSON's structure without
 * building anything — the top-level object's `headers` and `enqueuedAt`, skipping every other value
 * by matching its brackets — and leaves to `JSON.parse` whatever is not plain: escapes in the strings
 * it needs, headers that are not an object, unbalanced brackets, text after the object. Invalid JSON
 * inside a skipped value (args, meta) is the one thing it does not notice.
 */
import type { KeyIdMatcher, Signer } from './resp.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_DEPTH = 256;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Nesting of skipped values: the closing bracket each level expects. */
const closers = new Uint8Array(MAX_DEPTH);

export class EnvelopeScan {
  private buffer: Buffer = Buffer.alloc(0);
  private end = 0;
  /** Where the plain `stem-signature-key` value is; -1: absent; -2: present but not a string. */
  private keyStart = -1;
  private keyEnd = -1;
  private enqueuedStart = -1;
  private enqueuedEnd = -1;
  /** Whether the envelope has a `headers` object. */
  private headers = false;

  /** The end of the string whose opening quote is at `at` (past its closing quote), or -1. */
  private stringEnd(at: number): number {
    const { buffer, end } = this;
    for (let i = at + 1; i < end; i += 1) {
      const byte = buffer[i];
      if (byte === BACKSLASH) i += 1;
      else if (byte === QUOTE) return i + 1;
    }
    return -1;
  }

  /** The end of a string with no escapes at `at`, or -1 (not a string, or escaped: decode instead). */
  private plainStringEnd(at: number): number {
    const { buffer, end } = this;
    if (buffer[at] !== QUOTE) return -1;
    for (let i = at + 1; i < end; i += 1) {
      const byte = buffer[i];
      if (byte === BACKSLASH) return -1;
      if (byte === QUOTE) return i + 1;
    }
    return -1;
  }

  private space(at: number): number {
    let i = at;
    while (i < this.end && isSpace(this.buffer[i])) i += 1;
    return i;
  }

  /** The end of any JSON value at `at`, brackets matched, or -1. */
  private valueEnd(at: number): number {
    const { buffer, end } = this;
    const first = buffer[at];
    if (first === QUOTE) return this.stringEnd(at);
    if (first === 0x7b || first === 0x5b) {
      let depth = 0;
      for (let i = at; i < end; i += 1) {
        const byte = buffer[i] as number;
        if (byte === QUOTE) {
          i = this.stringEnd(i) - 1;
          if (i < 0) return -1;
        } else if (byte === 0x7b || byte === 0x5b) {
          if (depth === MAX_DEPTH) return -1;
          closers[depth++] = byte + 2; // { → }, [ → ]
        } else if (byte === 0x7d || byte === 0x5d) {
          if (depth === 0 || closers[--depth] !== byte) return -1;
          if (depth === 0) return i + 1;
        }
      }
      return -1;
    }
    if (first === undefined || !(first === 0x2d || (first >= 0x30 && first <= 0x39) || first === 0x74 || first === 0x66 || first === 0x6e)) return -1;
    let i = at + 1;
    while (i < end && buffer[i] !== 0x2c && buffer[i] !== 0x7d && buffer[i] !== 0x5d && !isSpace(buffer[i])) i += 1;
    return i;
  }

  private isKey(start: number, stop: number, word: string): boolean {
    if (stop - start !== word.length + 2) return false;
    for (let i = 0; i < word.length; i += 1) if (this.buffer[start + 1 + i] !== word.charCodeAt(i)) return false;
    return true;
  }

  /** Walks the members of the object at `at` (the envelope, or its headers); its end, or -1. */
  private object(at: number, headers: boolean): number {
    if (this.buffer[at] !== 0x7b) return -1;
    let i = this.space(at + 1);
    if (this.buffer[i] === 0x7d) return i + 1;
    for (;;) {
      const keyEnd = this.plainStringEnd(i);
      if (keyEnd === -1) return -1;
      const colon = this.space(keyEnd);
      if (this.buffer[colon] !== 0x3a) return -1;
      const valueAt = this.space(colon + 1);
      const valueEnd = headers ? this.header(i, keyEnd, valueAt) : this.member(i, keyEnd, valueAt);
      if (valueEnd === -1) return -1;
      i = this.space(valueEnd);
      if (this.buffer[i] === 0x7d) return i + 1;
      if (this.buffer[i] !== 0x2c) return -1;
      i = this.space(i + 1);
    }
  }

  /** A member of the envelope: its value's end, or -1. */
  private member(keyStart: number, keyEnd: number, valueAt: number): number {
    if (this.isKey(keyStart, keyEnd, 'headers')) {
      this.headers = true;
      this.keyStart = this.keyEnd = -1; // a repeated key: the last one counts, as in JSON.parse
      return this.object(valueAt, true);
    }
    if (!this.isKey(keyStart, keyEnd, 'enqueuedAt')) return this.valueEnd(valueAt);
    this.enqueuedStart = this.enqueuedEnd = -1;
    if (this.buffer[valueAt] !== QUOTE) return this.valueEnd(valueAt);
    const valueEnd = this.plainStringEnd(valueAt);
    this.enqueuedStart = valueAt + 1;
    this.enqueuedEnd = valueEnd - 1;
    return valueEnd;
  }

  /** A member of the headers: its value's end, or -1. */
  private header(keyStart: number, keyEnd: number, valueAt: number): number {
    if (!this.isKey(keyStart, keyEnd, 'stem-signature-key')) return this.valueEnd(valueAt);
    if (this.buffer[valueAt] !== QUOTE) {
      this.keyStart = -2;
      return this.valueEnd(valueAt);
    }
    const valueEnd = this.plainStringEnd(valueAt);
    this.keyStart = valueAt + 1;
    this.keyEnd = valueEnd - 1;
    return valueEnd;
  }

  /** Reads the member in `buffer[start, end)`; false when it must be decoded instead. */
  scan(buffer: Buffer, start: number, end: number): boolean {
    this.buffer = buffer;
    this.end = end;
    this.keyStart = this.keyEnd = this.enqueuedStart = this.enqueuedEnd = -1;
    this.headers = false;
    const objectEnd = this.object(this.space(start), false);
    return this.headers && objectEnd !== -1 && this.space(objectEnd) === end;
  }

  /** After a successful scan: who signed the member. */
  signer(matcher: KeyIdMatcher): Signer {
    return this.keyStart < 0 ? 'unsigned' : matcher.ofBytes(this.buffer, this.keyStart, this.keyEnd);
  }

  enqueuedAt(): string | null {
    return this.enqueuedStart < 0 ? null : this.buffer.toString('utf8', this.enqueuedStart, this.enqueuedEnd);
  }
}

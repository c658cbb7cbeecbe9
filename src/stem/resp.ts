/**
 * RESP2 parsing for stream replies, without decoding: a cursor over the receive buffer and an entry
 * view that keeps offsets of the two fields stem-rotor reads (`headers`, `enqueuedAt`).
 */
import { RotorError } from '../errors.js';
import { SIGNATURE_KEY_HEADER } from './canonical.js';

export const CR = 13;
const HEADERS = Buffer.from('headers');
const ENQUEUED_AT = Buffer.from('enqueuedAt');
const KEY_HEADER = Buffer.from('"stem-signature-key":');

const SIGNATURE_OPENING = Buffer.from('{"stem-signature":"');

function startsWith(buffer: Buffer, at: number, word: Buffer): boolean {
  if (at + word.length > buffer.length) return false;
  for (let i = 0; i < word.length; i += 1) if (buffer[at + i] !== word[i]) return false;
  return true;
}

/** Who signed an envelope, as the backlog counts it. */
export type Signer = 'counted' | 'other' | 'unsigned' | 'unparseable';

function sameBytes(buffer: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i += 1) if (buffer[start + i] !== word[i]) return false;
  return true;
}

/** The key ids being counted, matched as strings or as the UTF-8 bytes in a reply (nothing decoded). */
export class KeyIdMatcher {
  private readonly ids: ReadonlySet<string>;
  private readonly bytes: readonly Buffer[];

  constructor(keyIds: readonly string[]) {
    this.ids = new Set(keyIds);
    this.bytes = keyIds.map((id) => Buffer.from(id, 'utf8'));
  }

  /** A decoded key id: null is unsigned, undefined unparseable (see EntryView.keyId). */
  ofKeyId(keyId: string | null | undefined): Signer {
    if (keyId === undefined) return 'unparseable';
    if (keyId === null) return 'unsigned';
    return this.ids.has(keyId) ? 'counted' : 'other';
  }

  ofBytes(buffer: Buffer, start: number, end: number): Signer {
    for (const id of this.bytes) if (sameBytes(buffer, start, end, id)) return 'counted';
    return 'other';
  }
}

/**
 * One entry of a reply, as offsets into the receive buffer: valid only during the callback. Nothing
 * is decoded unless asked for.
 */
export class EntryView {
  buffer: Buffer = Buffer.alloc(0);
  idStart = 0;
  idEnd = 0;
  headersStart = -1;
  headersEnd = -1;
  enqueuedStart = -1;
  enqueuedEnd = -1;
  private keyStart = -1;
  private keyEnd = -1;

  id(): string {
    return this.buffer.toString('latin1', this.idStart, this.idEnd);
  }

  headers(): string | null {
    return this.headersStart < 0 ? null : this.buffer.toString('utf8', this.headersStart, this.headersEnd);
  }

  enqueuedAt(): string | null {
    return this.enqueuedStart < 0 ? null : this.buffer.toString('latin1', this.enqueuedStart, this.enqueuedEnd);
  }

  /** The entry's signing key id: a string, null (unsigned), or undefined (headers missing or not a JSON object). */
  keyId(): string | null | undefined {
    if (this.findPlainKeyId()) return this.buffer.toString('utf8', this.keyStart, this.keyEnd);
    return this.decodedKeyId();
  }

  /** Who signed the entry; a plain key id is compared as bytes, not decoded. */
  signer(matcher: KeyIdMatcher): Signer {
    if (this.findPlainKeyId()) return matcher.ofBytes(this.buffer, this.keyStart, this.keyEnd);
    return matcher.ofKeyId(this.decodedKeyId());
  }

  private decodedKeyId(): string | null | undefined {
    const headers = this.headers();
    if (headers === null) return undefined;
    try {
      const decoded: unknown = JSON.parse(headers);
      if (typeof decoded !== 'object' || decoded === null) return undefined;
      const keyId = (decoded as Record<string, unknown>)[SIGNATURE_KEY_HEADER];
      return typeof keyId === 'string' ? keyId : null;
    } catch {
      return undefined;
    }
  }

  private searched: Buffer | null = null;
  private searchedFrom = 0;
  private found = -1;

  /**
   * The first `"stem-signature-key":` at or after headersStart in the whole buffer. Entries without
   * the header would each search to the end of the buffer, so the last answer is reused while it
   * still lies ahead: every byte of a reply is searched at most once.
   */
  private nextKeyHeader(): number {
    const from = this.headersStart;
    const stemShaped = this.afterSignature();
    if (stemShaped !== -1) return stemShaped;
    if (this.searched !== this.buffer || from < this.searchedFrom || (this.found !== -1 && from > this.found)) {
      this.searched = this.buffer;
      this.searchedFrom = from;
      this.found = this.buffer.indexOf(KEY_HEADER, from);
    }
    return this.found;
  }

  /**
   * Stem's own headers (`jsonEncode` of its map): `{"stem-signature":"<base64>","stem-signature-key":…`.
   * Where the key header is in that shape, found by comparing bytes in place (no search call);
   * -1 for any other shape.
   */
  private afterSignature(): number {
    const { buffer } = this;
    let at = this.headersStart;
    if (!startsWith(buffer, at, SIGNATURE_OPENING)) return -1;
    at += SIGNATURE_OPENING.length;
    while (at < this.headersEnd && buffer[at] !== 0x22 && buffer[at] !== 0x5c) at += 1;
    return buffer[at] === 0x22 && buffer[at + 1] === 0x2c && startsWith(buffer, at + 2, KEY_HEADER) ? at + 2 : -1;
  }

  /**
   * Finds the `stem-signature-key` header without decoding the JSON (a flat map of strings, so the
   * key can only appear unescaped as a key) into keyStart/keyEnd; false when it is not plainly there.
   */
  private findPlainKeyId(): boolean {
    if (this.headersStart < 0) return false;
    const at = this.nextKeyHeader();
    if (at === -1 || at >= this.headersEnd) return false;
    const end = this.headersEnd;
    let quote = at + KEY_HEADER.length;
    while (quote < end && this.buffer[quote] === 0x20) quote += 1;
    if (this.buffer[quote] !== 0x22) return false;
    for (let close = quote + 1; close < end; close += 1) {
      const byte = this.buffer[close];
      if (byte === 0x5c) return false; // an escape: leave it to a real JSON decode
      if (byte === 0x22) {
        this.keyStart = quote + 1;
        this.keyEnd = close;
        return true;
      }
    }
    return false;
  }
}

/** The reply ends mid-value: wait for more bytes. */
export class Incomplete extends Error {}
const INCOMPLETE = new Incomplete();

/** Cursor over a buffer; throws INCOMPLETE when the data ends mid-value. */
export class Cursor {
  offset = 0;
  readonly buffer: Buffer;
  constructor(buffer: Buffer) {
    this.buffer = buffer;
  }

  private fail(): never {
    const end = this.buffer.indexOf(CR, this.offset);
    throw new RotorError(`Redis: ${this.buffer.toString('utf8', this.offset + 1, end === -1 ? this.buffer.length : end)}`);
  }

  /** The integer after a type byte, up to CRLF. */
  private integer(): number {
    const buffer = this.buffer;
    let i = this.offset + 1;
    let negative = false;
    if (buffer[i] === 0x2d) {
      negative = true;
      i += 1;
    }
    let value = 0;
    for (; i < buffer.length; i += 1) {
      const byte = buffer[i] as number;
      if (byte === CR) break;
      value = value * 10 + (byte - 48);
    }
    if (i + 1 >= buffer.length) throw INCOMPLETE;
    this.offset = i + 2;
    return negative ? -value : value;
  }

  /** `*N` → N (−1 for a null array); an error reply throws RotorError. */
  arrayLength(): number {
    if (this.offset >= this.buffer.length) throw INCOMPLETE;
    const type = this.buffer[this.offset];
    if (type === 0x2a) return this.integer();
    if (type === 0x2d) this.fail();
    throw new RotorError(`Redis: unexpected reply type "${String.fromCharCode(type ?? 0)}"`);
  }

  /** Skips one value of any type (simple, error, integer, bulk, array). */
  skip(): void {
    if (this.offset >= this.buffer.length) throw INCOMPLETE;
    const type = this.buffer[this.offset];
    if (type === 0x2d) this.fail();
    if (type === 0x24) {
      this.bulk();
      return;
    }
    const value = this.integer();
    if (type === 0x2a) for (let i = 0; i < value; i += 1) this.skip();
  }

  /** A bulk string: its start; `this.offset` moves past it. The end is start + returned length. */
  bulk(): number {
    if (this.offset >= this.buffer.length) throw INCOMPLETE;
    if (this.buffer[this.offset] !== 0x24) this.fail();
    const length = this.integer();
    const start = this.offset;
    if (length < 0) return start;
    if (start + length + 2 > this.buffer.length) throw INCOMPLETE;
    this.offset = start + length + 2;
    return start;
  }
}


/** One entry `*2 $id *2k (field value)…` into `view`, or INCOMPLETE. */
export function parseEntry(cursor: Cursor, view: EntryView): void {
  const { buffer } = cursor;
  if (cursor.arrayLength() !== 2) throw new RotorError('Redis: malformed stream entry');
  view.buffer = buffer;
  view.idStart = cursor.bulk();
  view.idEnd = cursor.offset - 2;
  view.headersStart = view.headersEnd = view.enqueuedStart = view.enqueuedEnd = -1;
  const fields = cursor.arrayLength();
  for (let i = 0; i + 1 < fields; i += 2) {
    const nameStart = cursor.bulk();
    const nameEnd = cursor.offset - 2;
    const valueStart = cursor.bulk();
    const valueEnd = cursor.offset - 2;
    if (sameBytes(buffer, nameStart, nameEnd, HEADERS)) {
      view.headersStart = valueStart;
      view.headersEnd = valueEnd;
    } else if (sameBytes(buffer, nameStart, nameEnd, ENQUEUED_AT)) {
      view.enqueuedStart = valueStart;
      view.enqueuedEnd = valueEnd;
    }
  }
}

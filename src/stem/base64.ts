/**
 * Base64 exactly as Dart's `base64.decode` (dart:convert Base64Decoder) accepts it:
 * both alphabets (even mixed), `%3D` for `=`, padding required, no whitespace, canonical trailing bits.
 * Stem decodes every key with it, so anything this rejects makes Stem refuse to start.
 */
export class Base64FormatError extends Error {
  override name = 'Base64FormatError' as const;
}

const VALID = /^[A-Za-z0-9+/\-_]*={0,2}$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function sextet(char: string): number {
  const normalized = char === '-' ? '+' : char === '_' ? '/' : char;
  return ALPHABET.indexOf(normalized);
}

export function decodeDartBase64(encoded: string): Buffer {
  const text = encoded.replace(/%3d/gi, '=');
  if (!VALID.test(text)) throw new Base64FormatError('invalid character');
  if (text.length % 4 !== 0) throw new Base64FormatError('missing padding or invalid length');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (padding > 0) {
    const last = sextet(text.charAt(text.length - padding - 1));
    const unusedBits = padding === 2 ? 0b1111 : 0b11;
    if ((last & unusedBits) !== 0) throw new Base64FormatError('non-canonical trailing bits');
  }
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Stem always encodes with the standard alphabet, padded. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

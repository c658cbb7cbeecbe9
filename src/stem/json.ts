/**
 * Stem's JSON as a Dart VM worker sees it (stem-interop-2 §3). The worker verifies
 * `jsonEncode(jsonDecode(wire))`, so numbers must keep their literal from the stored text (lossless
 * parse: `lossless-json`) and be printed by Dart's rules: integer literals that fit int64 stay
 * integers with every digit; anything with `.` or an exponent, or an integer beyond int64, is a
 * double printed as `double.toString()` — JS's shortest round-trip digits plus `.0` when there is
 * no `.` or exponent, `-0.0` for negative zero.
 */
import { isLosslessNumber, parse, stringify, type LosslessNumber } from 'lossless-json';

export type { LosslessNumber };
export { isLosslessNumber };

/** Parses JSON keeping every number's literal (as a LosslessNumber). */
export function parseStemJson(text: string): unknown {
  return parse(text);
}

/** Writes JSON back with every number's literal exactly as it was read. */
export function stringifyStemJson(value: unknown, space?: number): string {
  return stringify(value, undefined, space) as string;
}

const INTEGER = /^-?(0|[1-9]\d*)$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** Dart's `double.parse` of a JSON number literal, including its rule for exponents beyond ±400. */
function dartDouble(literal: string): number {
  const match = NUMBER.exec(literal);
  if (!match) throw new RangeError(`not a JSON number: ${literal}`);
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  if (Math.abs(Number(exponent)) > 400) {
    const zeroMantissa = /^0*$/.test(`${whole}${fraction}`);
    const magnitude = zeroMantissa || Number(exponent) < 0 ? 0 : Infinity;
    return sign === '-' ? -magnitude : magnitude;
  }
  return Number(literal);
}

/** The text Dart's `jsonEncode` gives for the value `jsonDecode` makes of this literal. */
export function dartNumber(literal: string): string {
  if (INTEGER.test(literal)) {
    const value = BigInt(literal);
    if (value >= INT64_MIN && value <= INT64_MAX) return value.toString();
  }
  const value = dartDouble(literal);
  if (!Number.isFinite(value)) throw new RangeError(`the number ${literal} is not finite in Dart: Stem cannot encode (or verify) it`);
  if (Object.is(value, -0)) return '-0.0';
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** A number field Stem reads as an int (priority, attempt, …), from a lossless literal or a number. */
export function toNumber(value: unknown): unknown {
  return isLosslessNumber(value) ? Number((value as LosslessNumber).value) : value;
}

/** Redis stream ids order as numbers: milliseconds, then sequence, whatever their digit counts. */
import { describe, expect, it } from 'vitest';
import { compareIds } from '../../src/stem/stream-format.js';

describe('compareIds', () => {
  it('orders by milliseconds, then sequence, as numbers rather than text', () => {
    const ids = ['10-0', '9-5', '9-10', '1700000000000-18446744073709551615', '1700000000000-2', '0-1', '9'];
    expect([...ids].sort(compareIds)).toEqual(['0-1', '9', '9-5', '9-10', '10-0', '1700000000000-2', '1700000000000-18446744073709551615']);
    expect(compareIds('5-3', '5-3')).toBe(0);
    expect(compareIds('9', '9-0')).toBe(0);
    expect(Math.sign(compareIds('18446744073709551615-1', '18446744073709551614-2'))).toBe(1); // beyond Number precision
  });
});

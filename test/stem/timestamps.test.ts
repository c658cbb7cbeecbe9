/** Zone-less times of Stem before 0.2 (stem-interop-2 §4). */
import { describe, expect, it } from 'vitest';
import { dartUtcIso } from '../../src/stem/canonical.js';
import { isTimeZone, stemInstant } from '../../src/stem/timestamps.js';

describe('Stem timestamps across releases', () => {
  it('zoned text is the instant it names', () => {
    expect(stemInstant('2026-01-20T14:15:30.250117Z', null)).toEqual({ at: new Date('2026-01-20T14:15:30.250Z'), zoneLess: false });
    expect(stemInstant('2026-01-20T09:15:30+05:30', 'America/New_York')?.at.toISOString()).toBe('2026-01-20T03:45:30.000Z');
  });

  it('zone-less text is read in the configured IANA zone, DST included', () => {
    expect(stemInstant('2026-01-20T09:15:30.250117', 'America/New_York')).toEqual({ at: new Date('2026-01-20T14:15:30.250Z'), zoneLess: true });
    expect(stemInstant('2026-07-20T09:15:30', 'America/New_York')?.at.toISOString()).toBe('2026-07-20T13:15:30.000Z');
    expect(stemInstant('2026-07-20T09:15:30', 'Asia/Kolkata')?.at.toISOString()).toBe('2026-07-20T03:45:30.000Z');
  });

  it('without a zone, zone-less text is the latest instant it could mean (UTC−12), so windows err towards blocking', () => {
    expect(stemInstant('2026-01-20T09:15:30.250117', null)).toEqual({ at: new Date('2026-01-20T21:15:30.250Z'), zoneLess: true });
    expect(stemInstant('not a time', null)).toBeNull();
  });

  it("the canonical form reads zone-less times in the worker's zone, keeping microseconds (the sheet's example)", () => {
    expect(dartUtcIso('2026-01-20T09:15:30.250117', 'America/New_York')).toBe('2026-01-20T14:15:30.250117Z');
  });

  it('knows an IANA zone from a typo', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Europe/Berlinn')).toBe(false);
  });
});

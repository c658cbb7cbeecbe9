/**
 * Stem's timestamps across releases (stem-interop-2 §4): up to stem 0.1.x (`stem_redis` 0.1.0 for
 * `deadAt`) they were local wall-clock times without a zone; since 0.2 they end in `Z`. A zone-less
 * time means nothing without the zone of the process that wrote it: with `stem.timezone` it is read
 * in that IANA zone; without, callers get the latest instant it could mean (UTC−12 wall clock), so a
 * window check errs towards "recent" and blocks rather than passes.
 */
const ZONE = /(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$/;
const WALL = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?$/;
/** The westernmost offset in use: a wall-clock time there is the latest UTC instant it can denote. */
const LATEST_OFFSET_MS = -12 * 3_600_000;

function isZoneLess(text: string): boolean {
  return !ZONE.test(text.trim());
}

/** Offset of `zone` from UTC at `instantMs`, from the platform's time-zone database. */
function zoneOffsetMs(zone: string, instantMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(instantMs));
  const field = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  const wall = Date.UTC(field('year'), field('month') - 1, field('day'), field('hour'), field('minute'), field('second'));
  return wall - Math.floor(instantMs / 1000) * 1000;
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export interface StemInstant {
  readonly at: Date;
  readonly zoneLess: boolean;
}

/**
 * A Stem timestamp as an instant: zoned text as written; zone-less text in `zone`, or (no zone
 * known) the latest instant it could mean. Null for text that is no time at all.
 */
export function stemInstant(text: string, zone: string | null): StemInstant | null {
  if (!isZoneLess(text)) {
    const at = new Date(text);
    return Number.isNaN(at.getTime()) ? null : { at, zoneLess: false };
  }
  const match = WALL.exec(text.trim());
  if (!match) return null;
  const [, year, month, day, hour, minute, second = '0', fraction = ''] = match;
  const wallMs = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), Number(`${fraction}000`.slice(0, 3)));
  return { at: new Date(zone === null ? wallMs - LATEST_OFFSET_MS : zonedWallToUtcMs(wallMs, zone)), zoneLess: true };
}

/** A wall-clock time (given as if it were UTC) in `zone`, as epoch milliseconds. */
export function zonedWallToUtcMs(wallMs: number, zone: string): number {
  // The offset at the wall time read as UTC, corrected once for a DST change in between.
  const first = wallMs - zoneOffsetMs(zone, wallMs);
  return wallMs - zoneOffsetMs(zone, first);
}

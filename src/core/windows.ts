/**
 * Change windows and freezes (pure, given the time): a window opens at each occurrence of a cron
 * expression read in an IANA time zone and stays open for a duration; a freeze is a date range in a
 * time zone during which no rotation step starts. Imported only by rings that configure either:
 * cron-parser and luxon cost ~40 ms of cold start.
 */
import { CronExpressionParser } from 'cron-parser';
import { DateTime } from 'luxon';

export interface ChangeWindow {
  readonly cron: string;
  /** ms */
  readonly duration: number;
  readonly timezone: string;
}

export interface Freeze {
  /** `YYYY-MM-DD` (the whole day) or `YYYY-MM-DDTHH:mm[:ss]`, in `timezone`. */
  readonly from: string;
  readonly to: string;
  readonly timezone: string;
  readonly reason?: string;
}

export function cronProblem(expression: string, timezone: string): string | null {
  try {
    CronExpressionParser.parse(expression, { tz: timezone });
    return null;
  } catch (error) {
    return `invalid cron expression "${expression}": ${(error as Error).message}`;
  }
}

export type WindowState = { readonly open: true; readonly closesAt: Date } | { readonly open: false; readonly opensAt: Date };

/** Open inside [an occurrence, occurrence + duration); when closed, when it opens next. */
export function windowState(window: ChangeWindow, now: Date): WindowState {
  const last = CronExpressionParser.parse(window.cron, { tz: window.timezone, currentDate: new Date(now.getTime() + 1) }).prev().toDate();
  if (now.getTime() - last.getTime() < window.duration) return { open: true, closesAt: new Date(last.getTime() + window.duration) };
  return { open: false, opensAt: CronExpressionParser.parse(window.cron, { tz: window.timezone, currentDate: now }).next().toDate() };
}

/** A freeze's instants: a date-only `to` lasts through the end of that day. Null when a bound is not a date. */
export function freezeBounds(freeze: Freeze): { readonly start: Date; readonly end: Date } | null {
  const start = DateTime.fromISO(freeze.from, { zone: freeze.timezone });
  const to = DateTime.fromISO(freeze.to, { zone: freeze.timezone });
  if (!start.isValid || !to.isValid) return null;
  const end = /^\d{4}-\d{2}-\d{2}$/.test(freeze.to) ? to.plus({ days: 1 }) : to;
  return { start: start.toJSDate(), end: end.toJSDate() };
}

/** Why a freeze or a window is wrong, for config validation. */
export function freezeProblem(freeze: Freeze): string | null {
  const bounds = freezeBounds(freeze);
  if (!bounds) return `from/to must be dates (YYYY-MM-DD) or local times (YYYY-MM-DDTHH:mm) in ${freeze.timezone}`;
  return bounds.end.getTime() <= bounds.start.getTime() ? `"${freeze.to}" is not after "${freeze.from}"` : null;
}

/** The freeze in force at `now`, with when it ends. */
export function activeFreeze(freezes: readonly Freeze[], now: Date): { readonly freeze: Freeze; readonly until: Date } | null {
  for (const freeze of freezes) {
    const bounds = freezeBounds(freeze);
    if (bounds && bounds.start <= now && now < bounds.end) return { freeze, until: bounds.end };
  }
  return null;
}

/** An instant as local time in `timezone`, e.g. `2026-12-01 02:00 Europe/Berlin`. */
export function localTime(at: Date, timezone: string): string {
  return `${DateTime.fromJSDate(at, { zone: timezone }).toFormat('yyyy-LL-dd HH:mm')} ${timezone}`;
}

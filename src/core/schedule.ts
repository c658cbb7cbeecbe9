/**
 * Scheduling decisions for `run`, pure over the injected time: the start window (a cron expression
 * and a duration, via cron-parser) and the "stuck" verdict for a rotation whose gates keep blocking.
 */
import { CronExpressionParser } from 'cron-parser';
import type { RingState } from './types.js';

export function cronProblem(expression: string): string | null {
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC' });
    return null;
  } catch (error) {
    return `invalid cron expression "${expression}": ${(error as Error).message}`;
  }
}

/** Inside [last occurrence, last occurrence + duration)? No window means always. */
export function insideWindow(window: { readonly cron: string; readonly duration: number } | undefined, now: Date): boolean {
  if (!window) return true;
  const expression = CronExpressionParser.parse(window.cron, { tz: 'UTC', currentDate: new Date(now.getTime() + 1) });
  const opened = expression.prev().toDate();
  return now.getTime() - opened.getTime() < window.duration;
}

/** A rotation is stuck when its current phase began longer than `stuckAfter` ago and it has not moved on. */
export function stuckFor(state: RingState, stuckAfterMs: number | undefined, now: Date): number | null {
  const rotation = state.rotation;
  if (!rotation || stuckAfterMs === undefined) return null;
  const waited = now.getTime() - Date.parse(rotation.phaseVerifiedAt);
  return waited >= stuckAfterMs ? waited : null;
}

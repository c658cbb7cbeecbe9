/**
 * The start window of `run` (a cron expression and a duration, via cron-parser). Imported only by
 * rings that configure one: cron-parser and its date library cost ~40 ms of cold start.
 */
import { CronExpressionParser } from 'cron-parser';

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

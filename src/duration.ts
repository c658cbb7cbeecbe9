import ms from 'ms';
import * as z from 'zod';

/** `10m`, `24h`, `30d`, `1.5h` → milliseconds (via `ms`); a bare number is rejected to avoid unit mistakes. */
export function parseDuration(text: string): number | undefined {
  if (!/[a-z]\s*$/i.test(text.trim())) return undefined;
  const value = ms(text as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

export const durationSchema = z.union([z.string(), z.number()]).transform((input, context) => {
  const text = String(input);
  const value = typeof input === 'number' ? undefined : parseDuration(text);
  if (value === undefined) {
    context.addIssue({ code: 'custom', message: `invalid duration "${text}" (use a number with a unit: 90s, 10m, 24h, 30d)` });
    return z.NEVER;
  }
  return value;
});

export function formatDuration(milliseconds: number): string {
  return ms(Math.max(0, Math.round(milliseconds)), { long: false });
}

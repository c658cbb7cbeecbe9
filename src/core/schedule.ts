/** When `run` starts a rotation and when a rotation is stuck, pure over the injected time. */
import type { KeyRecord, RingState } from './types.js';

/** A rotation is stuck when its current phase began longer than `stuckAfter` ago and it has not moved on. */
export function stuckFor(state: RingState, stuckAfterMs: number | undefined, now: Date): number | null {
  const rotation = state.rotation;
  if (!rotation || stuckAfterMs === undefined) return null;
  const waited = now.getTime() - Date.parse(rotation.phaseVerifiedAt);
  return waited >= stuckAfterMs ? waited : null;
}

/**
 * A key's age counts from the earlier of when stem-rotor first saw it and the date in a
 * scheme-generated id (`<prefix><yyyymmdd>-<hex>`), so adopting an old ring does not reset ages.
 */
export function keyBirth(record: KeyRecord, prefix: string): Date {
  const seen = new Date(record.createdAt);
  if (!record.id.startsWith(prefix)) return seen;
  const match = /^(\d{4})(\d{2})(\d{2})-[0-9a-f]{4}$/.exec(record.id.slice(prefix.length));
  if (!match) return seen;
  const dated = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return Number.isNaN(dated.getTime()) || dated > seen ? seen : dated;
}

/** `run`: should the scheduled job start a rotation of this stable ring now? */
export function rotationDue(state: RingState, prefix: string, maxAgeMs: number, now: Date): boolean {
  if (state.rotation || state.transition) return false;
  const active = state.keys.find((key) => key.id === state.activeKeyId);
  return active !== undefined && now.getTime() - keyBirth(active, prefix).getTime() >= maxAgeMs;
}

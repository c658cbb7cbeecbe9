/** The "stuck" verdict of `run` and `status`, pure over the injected time. */
import type { RingState } from './types.js';

/** A rotation is stuck when its current phase began longer than `stuckAfter` ago and it has not moved on. */
export function stuckFor(state: RingState, stuckAfterMs: number | undefined, now: Date): number | null {
  const rotation = state.rotation;
  if (!rotation || stuckAfterMs === undefined) return null;
  const waited = now.getTime() - Date.parse(rotation.phaseVerifiedAt);
  return waited >= stuckAfterMs ? waited : null;
}

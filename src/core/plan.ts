/**
 * The one decision every mutating command asks the core for: given the ring's state, what its
 * targets hold, the next step's gate verdicts and what the operator intends, the plan. The engine
 * renders it (dry run, `--out`) or applies it — never one without the other seeing the same value.
 */
import { checkTargets } from './guards.js';
import { discardUnwrittenTransition, gatesPass, planAbort, planAdvance, planStart, type Stamp } from './machine.js';
import { planRevoke } from './revoke.js';
import { isInFlight, type GateResult, type InFlight, type ObservedTarget, type RingState, type Transition } from './types.js';

export type Intent =
  | { readonly kind: 'start'; readonly rotationId: string; readonly newKeyId: string }
  | { readonly kind: 'advance' }
  | { readonly kind: 'abort'; readonly reason?: string }
  /** `freshKeyId`: the replacement's id when the revoked key is (becoming) active — see `revokeNeedsNewKey`. */
  | { readonly kind: 'revoke'; readonly keyId: string; readonly freshKeyId: string | null; readonly reason: string };

export type Plan =
  /** A new transition: save it, then write it. */
  | { readonly kind: 'transition'; readonly state: InFlight }
  /** A transition is in flight (a crash, a failed target): finish it before anything else (S4). */
  | { readonly kind: 'resume'; readonly state: InFlight }
  /** abort of a transition that wrote nothing: drop it; nothing is written. */
  | { readonly kind: 'discard'; readonly state: RingState; readonly discarded: Transition }
  /** The next step's gates hold it back. */
  | { readonly kind: 'blocked'; readonly gates: readonly GateResult[] };

/**
 * Pure. Throws what `intent` meets here — a target that drifted or holds bad content, advance on a
 * stable ring, start while rotating — so a command also calls it before its lease (with no gates,
 * and `PREFLIGHT_START`) to refuse before anything is written. `gates` are those before the next
 * step (a start's: its window); ignored when a transition is in flight; revoke has none.
 */
export function plan(state: RingState, observed: readonly ObservedTarget[], gates: readonly GateResult[], intent: Intent, stamp: Stamp): Plan {
  // revoke pre-empts whatever is in flight, and its apply checks every target against its own tolerance.
  if (intent.kind === 'revoke') return { kind: 'transition', state: planRevoke(state, { ...stamp, ...intent }) };
  if (isInFlight(state)) {
    const discarded = intent.kind === 'abort' ? discardUnwrittenTransition(state, stamp.now) : null;
    return discarded ? { kind: 'discard', state: discarded, discarded: state.transition } : { kind: 'resume', state };
  }
  checkTargets(state, observed);
  if (intent.kind === 'start') return gatesPass(gates) ? { kind: 'transition', state: planStart(state, { ...stamp, ...intent }) } : { kind: 'blocked', gates };
  const decision = intent.kind === 'advance' ? planAdvance(state, gates, stamp) : planAbort(state, gates, { ...stamp, ...(intent.reason === undefined ? {} : { reason: intent.reason }) });
  return decision.kind === 'blocked' ? decision : { kind: 'transition', state: decision.state };
}

/** The start intent a check before the lease uses: its ids are never written. */
export const PREFLIGHT_START: Intent = { kind: 'start', rotationId: 'preflight', newKeyId: '\u0000preflight' };

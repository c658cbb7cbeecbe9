/**
 * Persisted rotation state: JSON-safe, key ids and fingerprints only — never key material.
 * The phase is derived: no rotation → `stable`, else the rotation's phase.
 */
import type { Algorithm } from '../stem/signing-env.js';

export const PHASES = ['stable', 'added', 'activated'] as const;
export type Phase = (typeof PHASES)[number];

export type Audience = 'all' | 'verifiers';

export interface KeyRecord {
  readonly id: string;
  readonly fingerprint: string;
  /** When stem-rotor first saw or generated the key (ISO). */
  readonly createdAt: string;
}

/** A ring-level key set: what every target must hold when no transition is in flight (S10). */
export interface DesiredKeySet {
  readonly keyIds: readonly string[];
  readonly activeKeyId: string;
}

export type TransitionKind = 'start' | 'activate' | 'drop' | 'abort' | 'rollback' | 'revoke';

export type WriteStatus = 'pending' | 'writing' | 'verified' | 'unchanged' | 'failed';

export interface WriteRecord {
  readonly target: string;
  readonly status: WriteStatus;
  /** Provider version after the verified write (or of the unchanged content). */
  readonly version?: string;
  /** Fingerprints read back, in key order: `id=fingerprint`. */
  readonly fingerprints?: readonly string[];
  readonly writtenAt?: string;
  readonly verifiedAt?: string;
  readonly error?: string;
  /** The target's after-write step (a rolling restart): pending until it succeeded once. */
  readonly afterWrite?: 'pending' | 'done';
}

export interface GateOutcome {
  readonly name: string;
  readonly verdict: 'pass' | 'wait' | 'unknown';
  readonly reason: string;
  readonly overridden?: { readonly reason: string; readonly by: string };
}

/** Writes in flight towards `desired`. Resuming re-runs it; completed writes are skipped by content. */
export interface Transition {
  readonly id: string;
  readonly kind: TransitionKind;
  readonly from: DesiredKeySet;
  readonly desired: DesiredKeySet;
  /** A key this transition creates when no target holds it yet (start; revoke's replacement). */
  readonly generatedKeyId: string | null;
  /** Keys a target may still hold mid-transition (e.g. keys an interrupted transition wrote). */
  readonly tolerated: readonly string[];
  readonly parallel: boolean;
  readonly startedAt: string;
  readonly gates: readonly GateOutcome[];
  readonly writes: Readonly<Record<string, WriteRecord>>;
  /** The rotation this transition belongs to (start creates it). */
  readonly rotationId: string | null;
  /** revoke only: the key being revoked. */
  readonly revokedKeyId: string | null;
  readonly reason?: string;
}

export interface Rotation {
  readonly id: string;
  readonly oldKeyId: string;
  readonly newKeyId: string;
  /** `rolling-back`: rolled back from `activated` (ACTIVE is the old key again); the next step removes the new key. */
  readonly phase: 'added' | 'activated' | 'rolling-back';
  /** The activate gates passed once (revoke may then promote the new key). */
  readonly activateGatesPassed: boolean;
  readonly startedAt: string;
  /** When every target verified the write that entered the current phase. */
  readonly phaseVerifiedAt: string;
  /** When that write began (before its first target write). */
  readonly phaseStartedAt?: string;
}

export interface RingState {
  readonly schema: 1;
  readonly ring: string;
  readonly algorithm: Algorithm;
  readonly keys: readonly KeyRecord[];
  readonly activeKeyId: string;
  readonly revokedKeyIds: readonly string[];
  readonly rotation: Rotation | null;
  readonly transition: Transition | null;
  readonly updatedAt: string;
  /** What incremental gates read so far, by gate name (e.g. stem-signers' stream cursors). */
  readonly gateProgress?: Readonly<Record<string, unknown>>;
}

/** The phase as users see it: a ring rolling back holds both keys with the old one active, like `added`. */
export function phaseOf(state: RingState): Phase {
  const phase = state.rotation?.phase ?? 'stable';
  return phase === 'rolling-back' ? 'added' : phase;
}

/** What one target holds, as the core sees it: ids, fingerprints, active, which keys have secrets. */
export interface ObservedTarget {
  readonly target: string;
  readonly audience: Audience;
  readonly algorithm: Algorithm;
  readonly keys: readonly { readonly id: string; readonly fingerprint: string; readonly hasSecret: boolean }[];
  /** null for verifiers (they have no active key) or when unset. */
  readonly activeKeyId: string | null;
}

/** The target holds exactly these key ids (in any order). */
export function holdsExactly(observed: Pick<ObservedTarget, 'keys'>, keyIds: readonly string[]): boolean {
  const ids = observed.keys.map((key) => key.id);
  return ids.length === keyIds.length && keyIds.every((id) => ids.includes(id));
}

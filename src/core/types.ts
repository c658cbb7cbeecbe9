/**
 * Persisted rotation state: JSON-safe, key ids and fingerprints only — never key material.
 * The phase is derived: no rotation → `stable`, else the rotation's phase.
 */
import type { Algorithm } from '../stem/signing-env.js';

export const PHASES = ['stable', 'added', 'activated'] as const;
export type Phase = (typeof PHASES)[number];

export type Audience = 'all' | 'verifiers';

/** Who did something: the OS user (or `--as` / `STEM_ROTOR_ACTOR`) and the host. */
export interface Actor {
  readonly user: string;
  readonly host: string;
}

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

/** A gate's verdict on the next step (persisted with the transition it allowed, `carry` excepted). */
export interface GateResult {
  readonly name: string;
  readonly verdict: 'pass' | 'wait' | 'unknown';
  readonly reason: string;
  /** What the verdict rests on: counts, times, ids. Never key material. */
  readonly evidence?: Readonly<Record<string, unknown>>;
  readonly overridden?: { readonly reason: string; readonly by: string };
  /** Progress an incremental gate keeps for its next evaluation, saved in the ring's state under the lease. */
  readonly carry?: Readonly<Record<string, unknown>>;
}

/** Writes in flight towards `desired`. Resuming re-runs it; completed writes are skipped by content. */
interface TransitionCommon {
  readonly id: string;
  readonly from: DesiredKeySet;
  readonly desired: DesiredKeySet;
  /** Keys a target may still hold mid-transition (e.g. keys an interrupted transition wrote). */
  readonly tolerated: readonly string[];
  readonly parallel: boolean;
  readonly startedAt: string;
  readonly gates: readonly GateResult[];
  readonly writes: Readonly<Record<string, WriteRecord>>;
  readonly reason?: string;
  /** Who planned it. */
  readonly by?: Actor;
}

/** start: adds a key no target holds yet, and creates the rotation. */
export interface StartTransition extends TransitionCommon {
  readonly kind: 'start';
  readonly generatedKeyId: string;
  readonly rotationId: string;
  readonly revokedKeyId: null;
}

/** A step of the rotation `rotationId`: activate, drop, abort (remove the new key), rollback (old key active again). */
export interface StepTransition extends TransitionCommon {
  readonly kind: 'activate' | 'drop' | 'abort' | 'rollback';
  readonly generatedKeyId: null;
  readonly rotationId: string;
  readonly revokedKeyId: null;
}

/** revoke: removes `revokedKeyId` everywhere at once; a fresh key replaces it when it was active. */
export interface RevokeTransition extends TransitionCommon {
  readonly kind: 'revoke';
  readonly generatedKeyId: string | null;
  /** The rotation it pre-empted, if any. */
  readonly rotationId: string | null;
  readonly revokedKeyId: string;
}

export type Transition = StartTransition | StepTransition | RevokeTransition;
export type TransitionKind = Transition['kind'];

export interface Rotation {
  readonly id: string;
  readonly oldKeyId: string;
  readonly newKeyId: string;
  /** `rolling-back`: rolled back from `activated` (ACTIVE is the old key again); the next step removes the new key. */
  readonly phase: 'added' | 'activated' | 'rolling-back';
  readonly startedAt: string;
  /** When every target verified the write that entered the current phase. */
  readonly phaseVerifiedAt: string;
  /** When that write began (before its first target write). */
  readonly phaseStartedAt?: string;
  /** Who started it (unknown for rotations started before 0.2). */
  readonly startedBy?: Actor;
}

/** A recorded approval of one step of one rotation (`stem-rotor approve`, or `advance --approve`). */
export interface Approval {
  readonly by: Actor;
  readonly at: string;
  readonly reason: string;
  readonly step: StepTransition['kind'];
  /** Binds the approval to exactly that step: see `nextStep` in approval.ts. */
  readonly subject: string;
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
  /** Which gates last blocked the next step, and how (`blockKey`): a block is announced once. Cleared when a transition completes. */
  readonly lastBlock?: string;
  /** The approval recorded for the next step, if any (cleared when a transition completes). */
  readonly approval?: Approval;
  /** What incremental gates read so far, by gate name (e.g. stem-signers' stream cursors). */
  readonly gateProgress?: Readonly<Record<string, unknown>>;
}

/** A state with a transition in flight: what apply executes. */
export type InFlight = RingState & { readonly transition: Transition };

export function isInFlight(state: RingState): state is InFlight {
  return state.transition !== null;
}

/**
 * The activate gates passed once in this rotation (revoke may then promote its new key): it
 * activated, or its activate transition is being written.
 */
export function activateGatesPassed(state: RingState): boolean {
  const rotation = state.rotation;
  return rotation !== null && (rotation.phase !== 'added' || state.transition?.kind === 'activate');
}

/** The phase as users see it: a ring rolling back holds both keys with the old one active, like `added`. */
export function phaseOf(state: RingState): Phase {
  const phase = state.rotation?.phase ?? 'stable';
  return phase === 'rolling-back' ? 'added' : phase;
}

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Rollout'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/** Where a restarted workload's rollout stands, as its controller reports it. */
export interface WorkloadRollout {
  readonly target: string;
  /** `Deployment stem/workers`. */
  readonly workload: string;
  readonly done: boolean;
  /** What the controller reports: generations, updated and available replicas. */
  readonly detail: string;
}

/** A Kubernetes Event about the ring, recorded on a target's object (its Secret). */
export interface RingEvent {
  readonly type: 'Normal' | 'Warning';
  /** CamelCase, e.g. `PhaseChanged`, `GateBlocked`, `KeyRevoked`. */
  readonly reason: string;
  readonly message: string;
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

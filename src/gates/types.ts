/**
 * The gate contract: read-only evidence → a verdict. `pass` lets the step happen; `wait` means not
 * yet (with why); `unknown` means the evidence is missing, stale or unreachable — it blocks like
 * `wait` (S6, fail closed). Gates never write: one that reads incrementally returns its progress
 * (`carry`) and the engine saves it with the ring's state.
 */
import type { RingConfig } from '../config/schema.js';
import type { StepSlot } from '../core/machine.js';
import type { GateResult, RingState, WorkloadRollout } from '../core/types.js';
import type { StemSources } from '../stem/sources.js';

export interface GateContext {
  readonly ring: RingConfig;
  readonly state: RingState;
  readonly slot: StepSlot;
  readonly now: Date;
  /** Stem's broker and backend, when the ring configures `stem`; opened lazily by the gates that read them. */
  readonly stem: StemSources | null;
  /** Where the workloads the targets restarted stand (the `restarts` gate). */
  readonly restarts?: () => Promise<readonly WorkloadRollout[]>;
}

export type { GateResult } from '../core/types.js';

export interface Gate {
  readonly name: string;
  evaluate(context: GateContext): Promise<GateResult>;
}

/** A result builder for one gate: `verdictOf(name)('wait', 'why', {evidence})`. */
export function verdictOf(name: string) {
  return (verdict: GateResult['verdict'], reason: string, evidence?: Record<string, unknown>): GateResult => ({ name, verdict, reason, ...(evidence ? { evidence } : {}) });
}

/** The Stem sources of a stem-* gate's context; a config rule guarantees they exist. */
export function requireStem(context: GateContext): StemSources {
  if (!context.stem) throw new Error(`ring "${context.ring.name}" has no stem connection configured`);
  return context.stem;
}

/** When the write that entered the current phase started and was verified. */
export function phaseTimes(context: GateContext): { started: Date; verified: Date } | null {
  const rotation = context.state.rotation;
  if (!rotation) return null;
  const started = new Date(rotation.phaseStartedAt ?? rotation.phaseVerifiedAt);
  const verified = new Date(rotation.phaseVerifiedAt);
  return Number.isNaN(started.getTime()) || Number.isNaN(verified.getTime()) ? null : { started, verified };
}

/** Keys the next step removes (drop: all but the new key; finishing an abort: the new key). */
export function keysToDrop(context: GateContext): string[] {
  const rotation = context.state.rotation;
  if (!rotation) return [];
  return rotation.phase === 'rolling-back' ? [rotation.newKeyId] : context.state.keys.map((key) => key.id).filter((id) => id !== rotation.newKeyId);
}

/**
 * The provider contract, written from the engine's side: read some fields with a version, write some
 * fields with compare-and-set. Everything rotation-specific lives in the core; providers stay dumb.
 * Deliberately absent: delete, list, history — the engine never needs them.
 */
import type { RingEvent, WorkloadRollout } from '../src/core/types.js';

export interface TargetSnapshot {
  /** Field name → value for the requested fields that exist. */
  readonly fields: Readonly<Record<string, string>>;
  /** Opaque compare-and-set token (content hash, secret version, resourceVersion). */
  readonly version: string;
}

export interface WriteRequest {
  /** Fields to set; every other field of the secret is preserved exactly. */
  readonly set: Readonly<Record<string, string>>;
  /** The write fails with ConflictError unless the target is still at this version. */
  readonly expectedVersion: string;
  /** Deterministic per (rotation, transition, target): providers with idempotent writes use it. */
  readonly idempotencyKey: string;
}

export interface Provider {
  readonly providerName: string;
  /** Where the target lives, for humans (a path, a secret id); never a secret. */
  readonly location: string;
  read(fields: readonly string[]): Promise<TargetSnapshot>;
  /** Throws TargetContentError only when it refused before sending anything (the target is untouched). */
  write(request: WriteRequest): Promise<{ readonly version: string }>;
  /**
   * A step that must follow every verified write of this target (a rolling restart). The engine
   * records it in the transition and runs it again on resume until it has succeeded once.
   */
  afterWrite?(): Promise<void>;
  /** Where the workloads `afterWrite` restarted stand (restarts that must finish before the next step). */
  restartStatus?(): Promise<readonly WorkloadRollout[]>;
  /** Records an event about the ring on the target's object (`kubectl describe` shows it); best effort. */
  recordEvent?(event: RingEvent): Promise<void>;
  /** Refuses, before any target of the command is written, a write that cannot succeed here. */
  preflightWrite?(): Promise<void>;
  /** Temp files that crashed writers left beside the target (they may hold keys), for `check`. */
  residue?(): Promise<readonly string[]>;
  /** Removes the residue whose writers are gone; the engine calls it holding the ring's lease. */
  removeResidue?(): Promise<readonly string[]>;
}

/** Something a provider did on its own that belongs in the audit trail (e.g. breaking a dead writer's lock). */
export type ProviderNotice = (action: string, details: Readonly<Record<string, unknown>>) => void;

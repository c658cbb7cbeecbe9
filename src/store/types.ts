/**
 * The state store contract: rotation state per ring, a lease with a fencing counter, and the audit
 * trail. A save from a lease that is no longer current fails (S5). Deliberately absent: deleting
 * state or audit entries.
 */
import type { RingState } from '../core/types.js';
import type { AuditRead, AuditVerification } from './audit-chain.js';

export interface Lease {
  readonly ring: string;
  readonly owner: string;
  readonly token: string;
  /** Increases every time the lease changes hands; saves carry it. */
  readonly fence: number;
  readonly expiresAt: string;
  /** Every fenced save renews the lease for this long. */
  readonly ttlMs: number;
}

export interface AuditEvent {
  readonly time: string;
  readonly ring: string;
  readonly actor: { readonly user: string; readonly host: string };
  readonly action: string;
  readonly outcome: 'ok' | 'planned' | 'blocked' | 'failed' | 'partial' | 'overridden';
  readonly details?: Readonly<Record<string, unknown>>;
  /** Hash link to the record before it; the store sets it (audit-chain.ts). */
  readonly prev?: string;
}

export interface AcquireOptions {
  readonly owner: string;
  readonly token: string;
  readonly ttlMs: number;
  /** Take the lease even if someone holds it (revoke pre-empts a rotation); the old holder is fenced out. */
  readonly preempt?: boolean;
}

export interface StateStore {
  load(ring: string): Promise<RingState | null>;
  /** Many rings' states in one round trip, where the store can (a pass over thousands of rings). */
  loadMany?(rings: readonly string[]): Promise<ReadonlyMap<string, RingState | null>>;
  /** Fenced: fails unless `lease` is still the ring's current lease; renews it. */
  save(state: RingState, lease: Lease): Promise<void>;
  acquire(ring: string, options: AcquireOptions): Promise<Lease>;
  release(lease: Lease): Promise<void>;
  appendAudit(event: AuditEvent): Promise<void>;
  /** Events in order; torn or unreadable records are reported and skipped, never fatal. */
  readAudit(ring?: string): Promise<AuditRead>;
  /** Walks the whole trail's hash chain and reports the first break. */
  verifyAudit(): Promise<AuditVerification>;
  /** Temp files crashed writers left for this ring, for `check`. */
  residue(ring: string): Promise<readonly string[]>;
  /** Ends connections, if the store has any. */
  close(): Promise<void>;
}

/**
 * The state store contract: rotation state per ring, a lease with a fencing counter, and the audit
 * trail. A save from a lease that is no longer current fails (S5). Deliberately absent: deleting
 * state or audit entries.
 */
import type { RingState } from '../core/types.js';

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
  /** Fenced: fails unless `lease` is still the ring's current lease; renews it. */
  save(state: RingState, lease: Lease): Promise<void>;
  acquire(ring: string, options: AcquireOptions): Promise<Lease>;
  release(lease: Lease): Promise<void>;
  appendAudit(event: AuditEvent): Promise<void>;
  readAudit(ring?: string): Promise<AuditEvent[]>;
  /** Ends connections, if the store has any. */
  close(): Promise<void>;
}

/** `status`: the ring's phase, keys (age, fingerprint, where present), targets, gate verdicts, next action. */
import type { Provider } from '../../providers/types.js';
import type { RingConfig } from '../config/schema.js';
import { holdsExactly, phaseOf, type RingState, type Transition, type WriteRecord } from '../core/types.js';
import type { GateResult } from '../gates/index.js';
import type { TargetRead } from './targets.js';
import { keyBirth, stuckFor } from '../core/schedule.js';

export interface StatusReport {
  readonly ring: string;
  readonly algorithm: string;
  readonly phase: string;
  /** `aborting` stays for readers of stem-rotor 0.1's status JSON: the phase is `rolling-back`. */
  readonly rotation: (NonNullable<RingState['rotation']> & { readonly aborting: boolean }) | null;
  readonly transition: { readonly kind: string; readonly writes: readonly WriteRecord[]; readonly desired: Transition['desired'] } | null;
  readonly keys: readonly { id: string; active: boolean; fingerprint: string; createdAt: string; ageMs: number; presentIn: string[] }[];
  readonly targets: readonly { name: string; audience: string; provider: string; location: string; version: string | null; keyIds: string[]; activeKeyId: string | null; inSync: boolean; error?: string }[];
  readonly gates: readonly GateResult[];
  readonly revokedKeyIds: readonly string[];
  /** Times the scheduled job and its alerts go by (ISO). */
  readonly schedule: {
    /** The active key's birth: the date in a scheme id, or when first seen, whichever is earlier. */
    readonly activeKeyCreatedAt: string;
    /** When that key reaches policy.maxAge. */
    readonly nextRotationDueAt: string;
    /** When the current rotation phase was entered (null while stable). */
    readonly phaseEnteredAt: string | null;
  };
  /** How long the rotation has been stuck (policy.stuckAfter exceeded while gates block), or null. */
  readonly stuckForMs: number | null;
  /** false until the ring's keys are recorded (`adopt`, or the first rotate command). */
  readonly adopted: boolean;
  readonly next: string;
}

export interface TargetStatusInput {
  readonly name: string;
  readonly audience: string;
  readonly provider: Provider;
  readonly read?: TargetRead;
  readonly error?: string;
}

export function buildStatus(ring: RingConfig, state: RingState, targets: readonly TargetStatusInput[], gates: readonly GateResult[], now: Date, adopted = true): StatusReport {
  const prefix = ring.keyIdPrefix ?? '';
  const keys = state.keys.map((key) => ({
    id: key.id,
    active: key.id === state.activeKeyId,
    fingerprint: key.fingerprint,
    createdAt: key.createdAt,
    // as `run` counts it: an adopted key whose id carries a date is as old as that date
    ageMs: now.getTime() - keyBirth(key, prefix).getTime(),
    presentIn: targets.filter((t) => t.read?.observed.keys.some((k) => k.id === key.id && k.fingerprint === key.fingerprint)).map((t) => t.name),
  }));
  const expectedIds = state.keys.map((key) => key.id);
  const targetRows = targets.map((t) => {
    const observed = t.read?.observed;
    const ids = observed?.keys.map((key) => key.id) ?? [];
    const inSync = observed !== undefined && holdsExactly(observed, expectedIds) && (observed.audience === 'verifiers' || observed.activeKeyId === state.activeKeyId);
    return {
      name: t.name,
      audience: t.audience,
      provider: t.provider.providerName,
      location: t.provider.location,
      version: t.read?.snapshot.version ?? null,
      keyIds: ids,
      activeKeyId: observed?.activeKeyId ?? null,
      inSync,
      ...(t.error ? { error: t.error } : {}),
    };
  });
  return {
    ring: ring.name,
    algorithm: state.algorithm,
    phase: phaseOf(state),
    rotation: state.rotation && { ...state.rotation, aborting: state.rotation.phase === 'rolling-back' },
    transition: state.transition ? { kind: state.transition.kind, writes: Object.values(state.transition.writes), desired: state.transition.desired } : null,
    keys,
    targets: targetRows,
    gates,
    revokedKeyIds: state.revokedKeyIds,
    schedule: scheduleOf(ring, state),
    stuckForMs: gates.some((gate) => gate.verdict !== 'pass') ? stuckFor(state, ring.policy.stuckAfter, now) : null,
    adopted,
    next: adopted ? nextAction(ring, state, gates, targetRows) : `not adopted yet: \`stem-rotor adopt ${ring.name}\` records its keys and how old they are (add --created DATE when they are older than their ids say)`,
  };
}

function scheduleOf(ring: RingConfig, state: RingState): StatusReport['schedule'] {
  const active = state.keys.find((key) => key.id === state.activeKeyId) ?? state.keys[0];
  const born = active ? keyBirth(active, ring.keyIdPrefix ?? '') : new Date(state.updatedAt);
  return {
    activeKeyCreatedAt: born.toISOString(),
    nextRotationDueAt: new Date(born.getTime() + ring.policy.maxAge).toISOString(),
    phaseEnteredAt: state.rotation?.phaseVerifiedAt ?? null,
  };
}

function nextAction(ring: RingConfig, state: RingState, gates: readonly GateResult[], targets: readonly { inSync: boolean; name: string; error?: string }[]): string {
  const broken = targets.filter((t) => t.error);
  if (broken.length > 0) return `fix unreadable targets: ${broken.map((t) => t.name).join(', ')}`;
  if (state.transition) return `a ${state.transition.kind} was interrupted: run \`stem-rotor rotate advance ${ring.name}\` to resume it`;
  const drifted = targets.filter((t) => !t.inSync);
  if (drifted.length > 0) return `targets drifted from the ring (${drifted.map((t) => t.name).join(', ')}): run \`stem-rotor check ${ring.name}\``;
  const rotation = state.rotation;
  if (!rotation) return `stable: run \`stem-rotor rotate start ${ring.name}\` to rotate (scheduled after maxAge)`;
  const waiting = gates.filter((gate) => gate.verdict !== 'pass');
  const step = rotation.phase === 'added' ? `activate "${rotation.newKeyId}"` : rotation.phase === 'rolling-back' ? `remove "${rotation.newKeyId}" (finish abort)` : `drop "${rotation.oldKeyId}"`;
  if (waiting.length > 0) return `waiting to ${step}: ${waiting.map((gate) => `${gate.name}: ${gate.reason}`).join('; ')}`;
  return `ready: run \`stem-rotor rotate advance ${ring.name}\` to ${step}`;
}


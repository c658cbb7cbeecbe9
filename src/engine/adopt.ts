/**
 * Bringing keys a fleet already uses under management (`adopt`), and accepting what the targets hold
 * when they drifted from the ring's state (`reconcile`). Both read every target, which must agree
 * with each other, and write only the state store, audited.
 */
import { bootstrapState } from '../core/guards.js';
import { keyBirth } from '../core/schedule.js';
import type { KeyRecord, RingState } from '../core/types.js';
import { ConfigError, InvalidTransitionError } from '../errors.js';
import type { RingEngine } from './engine.js';

export type CreatedSource = '--created' | 'key id' | 'first seen';

export interface AdoptedKey {
  readonly id: string;
  readonly fingerprint: string;
  readonly active: boolean;
  readonly createdAt: string;
  readonly source: CreatedSource;
}

export interface AdoptReport {
  readonly ring: string;
  readonly keys: readonly AdoptedKey[];
  readonly message: string;
}

/** When each key was created: the operator's word, else the date in a scheme id, else now (first seen). */
function adoptedKeys(engine: RingEngine, state: RingState, created: Date | undefined, now: Date): AdoptedKey[] {
  const prefix = engine.ring.keyIdPrefix ?? '';
  return state.keys.map((key) => {
    const fromId = keyBirth({ ...key, createdAt: now.toISOString() }, prefix);
    const [at, source]: [Date, CreatedSource] = created ? [created, '--created'] : fromId < now ? [fromId, 'key id'] : [now, 'first seen'];
    return { id: key.id, fingerprint: key.fingerprint, active: key.id === state.activeKeyId, createdAt: at.toISOString(), source };
  });
}

export async function adoptRing(engine: RingEngine, options: { readonly created?: Date }): Promise<AdoptReport> {
  const now = engine.deps.clock.now();
  if (options.created && options.created > now) throw new ConfigError(`--created ${options.created.toISOString()} is in the future; give the date the keys were created, or leave it out: \`stem-rotor adopt ${engine.ring.name}\``);
  const name = engine.ring.name;
  return engine.withLease('adopt', async (lease) => {
    if (await engine.deps.store.load(name)) {
      throw new ConfigError(`ring "${name}" is already managed (it has a state); to accept what its targets hold now: \`stem-rotor reconcile ${name}\`, then \`stem-rotor reconcile ${name} --yes --reason "…"\``);
    }
    const reads = await engine.readAll();
    const found = bootstrapState(name, engine.ring.algorithm, reads.map((read) => read.observed), now.toISOString());
    const keys = adoptedKeys(engine, found, options.created, now);
    const state: RingState = { ...found, keys: keys.map((key): KeyRecord => ({ id: key.id, fingerprint: key.fingerprint, createdAt: key.createdAt })) };
    await engine.deps.store.save(state, lease);
    await engine.audit('adopt', 'ok', { keys: keys.map((key) => `${key.id}=${key.fingerprint} created ${key.createdAt} (${key.source})`), activeKeyId: state.activeKeyId });
    return { ring: name, keys, message: `adopted ring "${name}": ${keys.length} key${keys.length === 1 ? '' : 's'}, active "${state.activeKeyId}"; next: \`stem-rotor status ${name}\`` };
  });
}

export interface ReconcileReport {
  readonly ring: string;
  /** What differs, one line each; empty when the targets hold what the state says. */
  readonly differences: readonly string[];
  readonly applied: boolean;
  readonly message: string;
}

function describeDifferences(stored: RingState, found: RingState): string[] {
  const storedIds = new Map(stored.keys.map((key) => [key.id, key.fingerprint]));
  const foundIds = new Map(found.keys.map((key) => [key.id, key.fingerprint]));
  return [
    ...[...foundIds].filter(([id]) => !storedIds.has(id)).map(([id, fingerprint]) => `+ key ${id} (${fingerprint}) is in the targets, not in the state`),
    ...[...storedIds].filter(([id]) => !foundIds.has(id)).map(([id, fingerprint]) => `- key ${id} (${fingerprint}) is in the state, not in the targets`),
    ...[...foundIds].filter(([id, fingerprint]) => storedIds.has(id) && storedIds.get(id) !== fingerprint).map(([id, fingerprint]) => `~ key ${id}: fingerprint ${storedIds.get(id)} in the state, ${fingerprint} in the targets`),
    ...(stored.activeKeyId !== found.activeKeyId ? [`~ active key: ${stored.activeKeyId} in the state, ${found.activeKeyId} in the targets`] : []),
  ];
}

/** Shows (and with `apply`, accepts) the targets' agreed content as the ring's state. */
export async function reconcileRing(engine: RingEngine, options: { readonly apply: boolean; readonly reason?: string; readonly force: boolean }): Promise<ReconcileReport> {
  const name = engine.ring.name;
  const decide = async (): Promise<{ stored: RingState; found: RingState; differences: string[] }> => {
    const stored = await engine.deps.store.load(name);
    if (!stored) throw new ConfigError(`ring "${name}" has no state yet: nothing to reconcile; bring its keys under management with \`stem-rotor adopt ${name}\``);
    const reads = await engine.readAll();
    const found = bootstrapState(name, engine.ring.algorithm, reads.map((read) => read.observed), engine.deps.clock.now().toISOString());
    const returned = found.keys.filter((key) => stored.revokedKeyIds.includes(key.id)).map((key) => key.id);
    if (returned.length > 0) throw new ConfigError(`ring "${name}": the targets hold revoked key${returned.length === 1 ? '' : 's'} ${returned.join(', ')}; it is never accepted back: \`stem-rotor revoke ${name} ${returned[0]} --reason "…" --yes\` removes it again`);
    return { stored, found, differences: describeDifferences(stored, found) };
  };
  const preview = await decide();
  if (preview.differences.length === 0) return { ring: name, differences: [], applied: false, message: `ring "${name}": the targets hold what the state says; nothing to reconcile` };
  const busy = preview.stored.transition ?? preview.stored.rotation;
  if (busy && !options.force) {
    throw new InvalidTransitionError(`ring "${name}" is mid-rotation (${preview.stored.transition ? `its ${preview.stored.transition.kind} is being written` : `phase ${preview.stored.rotation?.phase}`}); finish it (\`stem-rotor rotate advance ${name}\`) or abort it (\`stem-rotor rotate abort ${name}\`) first, or accept the targets anyway with --force`);
  }
  if (!options.apply) {
    return { ring: name, differences: preview.differences, applied: false, message: `ring "${name}" differs from its targets; nothing was written. To accept the targets as the ring's state: \`stem-rotor reconcile ${name} --yes --reason "…"\`` };
  }
  if (!options.reason?.trim()) throw new ConfigError('reconcile --yes needs --reason TEXT (it is audited)');
  return engine.withLease('reconcile', async (lease) => {
    const { stored, found, differences } = await decide();
    const known = new Map(stored.keys.map((key) => [key.id, key]));
    // keys the ring knew keep their creation time; a rotation or transition in flight ends (--force)
    const accepted: RingState = { ...found, keys: found.keys.map((key) => (known.get(key.id)?.fingerprint === key.fingerprint ? (known.get(key.id) as KeyRecord) : key)), revokedKeyIds: stored.revokedKeyIds };
    await engine.deps.store.save(accepted, lease);
    await engine.audit('reconcile', 'ok', { reason: options.reason, differences, forced: options.force && stored.rotation !== null, before: { keys: stored.keys.map((key) => key.id), activeKeyId: stored.activeKeyId, phase: stored.rotation?.phase ?? 'stable' } });
    return { ring: name, differences, applied: true, message: `ring "${name}": accepted what the targets hold as its state (keys ${accepted.keys.map((key) => key.id).join(', ')}, active ${accepted.activeKeyId}); next: \`stem-rotor check ${name}\`` };
  });
}

/**
 * Executing a transition: every target in write order — record, compare-and-set write, read back,
 * record, then its after-write step — and the transition completed in the store. Re-reads and
 * re-validates everything first, so it is also the resume path (S4).
 */
import { isNetworkError } from '../../providers/retry.js';
import { holdsKeySet, renderKeySet } from '../core/keyset.js';
import { completeTransition, recordWrite, rekeyTransition } from '../core/machine.js';
import { agreedFingerprints, assertWriteSafe, checkTargets } from '../core/guards.js';
import { phaseOf, type InFlight, type ObservedTarget, type RingState, type WriteRecord } from '../core/types.js';
import type { RingConfig } from '../config/schema.js';
import { ConflictError, InternalError, PartialFailureError, RotorError, TargetContentError } from '../errors.js';
import { generateKey, keyFingerprint, type KeyMaterial } from '../stem/keys.js';
import type { Lease } from '../store/types.js';
import { runRestartHooks } from './hooks.js';
import type { RingSession } from './session.js';
import { readTarget, toFields, writeOrder, type TargetHandle, type TargetRead } from './targets.js';

/**
 * Runs the state's transition to completion; also the resume path: targets already at the desired
 * set are recorded, not rewritten. `reads`: the command's own read round under this lease (saving
 * the plan does not touch targets).
 */
export async function applyTransition(session: RingSession, initial: InFlight, lease: Lease, action: string, reads: readonly TargetRead[]): Promise<{ state: RingState; writes: WriteRecord[] }> {
  let state = initial;
  const fingerprints = checkTargets(state, reads.map((read) => read.observed));
  const material = mergeMaterial(reads);
  const latest = new Map(reads.map((read) => [read.handle.config.name, read]));

  const ensured = await ensureMaterial(session, state, material, lease, action);
  state = ensured.state;
  const { transition } = state;
  for (const [id, key] of ensured.generated) fingerprints.set(id, keyFingerprint(session.ring.algorithm, key));

  const handles = writeOrder(await session.targets());
  // Saves run one at a time; records that arrive while one is being written go into the next save
  // together. A record's promise settles once a save that holds it is durable, so "record, then
  // write" still holds.
  let saving = Promise.resolve();
  let queued: ((current: InFlight) => InFlight)[] = [];
  let batch: Promise<void> | null = null;
  const save = (next: (current: InFlight) => InFlight): Promise<void> => {
    queued.push(next);
    batch ??= saving = saving.then(async () => {
      batch = null;
      const records = queued;
      queued = [];
      for (const record of records) state = record(state);
      await session.deps.store.save(state, lease);
    });
    return batch;
  };
  // A verified write goes into the next save, not one of its own: lost in a crash, it costs
  // nothing (resume re-reads the target, finds it written and records it), and a wave of parallel
  // writes then costs one save before the writes and the completion after them.
  const saveLater = (next: (current: InFlight) => InFlight): void => {
    queued.push(next);
  };
  /** Every record so far in `state`, saved or not (the next save, or the completion, writes them). */
  const settle = async (): Promise<void> => {
    await saving;
    for (const record of queued.splice(0)) state = record(state);
  };

  /** A verified write's after-write step (workload restarts, then restart hooks): recorded pending, run, recorded done. */
  const afterWrite = async (handle: TargetHandle, verified: WriteRecord): Promise<void> => {
    const hooks = handle.config.hooks;
    if ((!handle.provider.afterWrite && hooks.length === 0) || verified.afterWrite === 'done') return;
    await save((s) => recordWrite(s, { ...verified, afterWrite: 'pending' }, session.now()));
    await handle.provider.afterWrite?.();
    const { desired } = transition;
    await runRestartHooks(hooks, { ring: session.ring.name, target: handle.config.name, transition: transition.kind, transitionId: transition.id, keyIds: desired.keyIds, activeKeyId: desired.activeKeyId });
    await save((s) => recordWrite(s, { ...verified, afterWrite: 'done' }, session.now()));
    session.progress(`${session.ring.name}/${handle.config.name}: after-write step done (${transition.kind})`);
  };

  const writeOne = async (handle: TargetHandle): Promise<void> => {
    const name = handle.config.name;
    const previous = transition.writes[name];
    for (let attempt = 0; ; attempt += 1) {
      const read = latest.get(name) as TargetRead;
      if (holdsKeySet(read.observed, transition.desired, fingerprints)) {
        // Written by an earlier attempt of this transition (a failure after the write landed keeps writtenAt).
        const written = previous?.status === 'writing' || previous?.status === 'verified' || (previous?.status === 'failed' && previous.writtenAt !== undefined);
        const status = written ? 'verified' : 'unchanged';
        const record: WriteRecord = { target: name, status, version: read.snapshot.version, fingerprints: fingerprintList(read.observed), verifiedAt: session.now(), ...(previous?.afterWrite ? { afterWrite: previous.afterWrite } : {}) };
        saveLater((s) => recordWrite(s, record, session.now()));
        session.progress(`${session.ring.name}/${name}: ${status === 'unchanged' ? 'already holds the desired keys' : 'verified'} (${transition.kind})`);
        // Resuming a write that landed: its after-write step may never have run, or failed.
        if (status === 'verified') await afterWrite(handle, record);
        return;
      }
      assertWriteSafe(transition, read.observed, [...latest.values()].map((r) => r.observed));
      const rendered = toFields(handle.config, renderKeySet(session.ring.algorithm, handle.config.audience, transition.desired, material));
      const fields = Object.fromEntries(Object.entries(rendered).filter(([field, value]) => read.snapshot.fields[field] !== value));
      await save((s) => recordWrite(s, { target: name, status: 'writing', writtenAt: session.now() }, session.now()));
      session.progress(`${session.ring.name}/${name}: writing ${Object.keys(fields).join(', ')} (${transition.kind})`);
      try {
        await handle.provider.write({ set: fields, expectedVersion: read.snapshot.version, idempotencyKey: `${transition.id}:${name}` });
      } catch (error) {
        // Refused before anything was sent (provider contract): the target was not touched.
        if (error instanceof TargetContentError) await save((s) => recordWrite(s, { target: name, status: 'pending', error: error.message }, session.now()));
        if (!(error instanceof ConflictError) || attempt >= (session.deps.casRetries ?? 3)) throw error;
        session.progress(`${session.ring.name}/${name}: changed concurrently; re-reading and re-validating`);
        const fresh = await readTarget(session.ring, handle);
        checkTargets(state, [fresh.observed]);
        agreedFingerprints([fresh.observed], [...fingerprints].map(([id, fingerprint]) => ({ id, fingerprint, createdAt: '' })));
        latest.set(name, fresh);
        continue;
      }
      const back = await readTarget(session.ring, handle);
      latest.set(name, back);
      if (!holdsKeySet(back.observed, transition.desired, fingerprints)) {
        throw new RotorError(`target "${name}": read-back after the write does not match (holds ${back.observed.keys.map((k) => `${k.id}=${k.fingerprint}`).join(',')}, active ${back.observed.activeKeyId ?? 'none'})`);
      }
      const verified: WriteRecord = { target: name, status: 'verified', version: back.snapshot.version, fingerprints: fingerprintList(back.observed), writtenAt: state.transition.writes[name]?.writtenAt ?? session.now(), verifiedAt: session.now() };
      saveLater((s) => recordWrite(s, verified, session.now()));
      session.progress(`${session.ring.name}/${name}: verified ${back.snapshot.version}`);
      await afterWrite(handle, verified);
      return;
    }
  };

  if (transition.parallel) {
    const outcomes = await Promise.allSettled(handles.map((handle) => withRetries(session, () => writeOne(handle))));
    const bug = outcomes.find((outcome) => outcome.status === 'rejected' && outcome.reason instanceof InternalError);
    if (bug) throw (bug as PromiseRejectedResult).reason;
    const failures = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? [{ target: (handles[index] as TargetHandle).config.name, error: (outcome.reason as Error).message }] : []));
    if (failures.length > 0) {
      for (const failure of failures) await save((s) => recordFailure(s, failure.target, failure.error, session.now()));
      await session.audit(action, 'partial', { transition: transition.kind, failures });
      throw new PartialFailureError(`${transition.kind}: ${failures.length} of ${handles.length} targets failed (${failures.map((f) => `${f.target}: ${f.error}`).join('; ')}); re-run to converge`, failures);
    }
  } else {
    for (const [index, handle] of handles.entries()) {
      try {
        await withRetries(session, () => writeOne(handle));
      } catch (error) {
        await settle(); // an earlier target's verified write may still wait for a save
        const written = handles.slice(0, index).filter((done) => state.transition.writes[done.config.name]?.status === 'verified').map((done) => done.config.name);
        // A tripped guard is a bug to report as one, never a target that merely failed.
        if (written.length === 0 || error instanceof InternalError) throw error;
        const failure = { target: handle.config.name, error: (error as Error).message };
        await saving;
        await save((s) => recordFailure(s, failure.target, failure.error, session.now()));
        const untouched = handles.slice(index + 1).map((rest) => rest.config.name);
        await session.audit(action, 'partial', { transition: transition.kind, written, failures: [failure], notAttempted: untouched });
        throw new PartialFailureError(
          `${transition.kind}: written ${written.join(', ')}; failed ${failure.target} (${failure.error})${untouched.length ? `; not attempted ${untouched.join(', ')}` : ''}. Targets now hold different key sets, which this step allows; fix the cause and re-run \`stem-rotor rotate advance ${session.ring.name}\` to converge`,
          [failure],
        );
      }
    }
  }
  await settle();
  const final = completeTransition(state, fingerprints, session.now());
  await session.deps.store.save(final, lease);
  await session.audit(action, 'ok', {
    transition: transition.kind,
    transitionId: transition.id,
    phase: phaseOf(final),
    keys: final.keys.map((key) => `${key.id}=${key.fingerprint}`),
    activeKeyId: final.activeKeyId,
  });
  return { state: final, writes: Object.values(state.transition.writes) };
}

/**
 * Bounded retries with backoff for socket-level failures a provider let through. Everything else is
 * final: content, conflict and provider errors (providers retry their own transient faults), and a
 * plain Error, which is a bug, not bad luck.
 */
async function withRetries(session: RingSession, work: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 3 || !isNetworkError(error)) throw error;
      await session.deps.clock.sleep(50 * 2 ** attempt * (0.5 + session.randomBytes(1)[0]! / 255));
    }
  }
}

/**
 * Every key of the desired set must have material: recovered from targets (all holders agree), or
 * generated for the transition's new key when no target holds it yet.
 */
async function ensureMaterial(
session: RingSession,
  initial: InFlight,
  material: Map<string, KeyMaterial>,
  lease: Lease,
  action: string,
): Promise<{ state: InFlight; generated: Map<string, KeyMaterial> }> {
  let state = initial;
  const generated = new Map<string, KeyMaterial>();
  const needsSecret = session.ring.targets.some((target) => target.audience === 'all');
  const newId = state.transition.generatedKeyId;
  if (newId !== null) {
    const held = material.get(newId);
    if (held && !held.secret && needsSecret) {
      const freshId = session.freshKeyId(state);
      state = rekeyTransition(state, freshId, session.now());
      await session.deps.store.save(state, lease);
      await session.audit(action, 'ok', { rekeyed: { abandoned: newId, replacement: freshId }, why: 'the seed was never written to a signer target' });
      material.delete(newId);
    }
    const currentId = state.transition.generatedKeyId ?? newId;
    if (!material.has(currentId)) {
      const key = generateKey(session.ring.algorithm, currentId, session.randomBytes);
      material.set(currentId, key);
      generated.set(currentId, key);
    }
  }
  assertMaterialAvailable(session.ring, state, material);
  return { state, generated };
}

/** A failed target keeps what its record knew (when it was written, a pending after-write step). */
function recordFailure(state: InFlight, target: string, error: string, now: string): InFlight {
  return recordWrite(state, { ...state.transition.writes[target], target, status: 'failed', error }, now);
}

/** Every key the transition writes has material (its generated key excepted: that is made when applied). */
export function assertMaterialAvailable(ring: RingConfig, state: InFlight, material: ReadonlyMap<string, KeyMaterial>): void {
  const { transition } = state;
  const needsSecret = ring.targets.some((target) => target.audience === 'all');
  for (const id of transition.desired.keyIds) {
    if (id === transition.generatedKeyId && !material.has(id)) continue;
    const key = material.get(id);
    if (!key || (needsSecret && !key.secret)) {
      throw new RotorError(`ring "${ring.name}": no target holds the ${key ? 'secret of' : 'material for'} key "${id}"; it cannot be written`);
    }
  }
}

function fingerprintList(observed: ObservedTarget): string[] {
  return observed.keys.map((key) => `${key.id}=${key.fingerprint}`);
}

/** Key material by id across targets: seeds from signer targets, public keys from any. */
export function mergeMaterial(reads: readonly TargetRead[]): Map<string, KeyMaterial> {
  const merged = new Map<string, KeyMaterial>();
  for (const read of reads) {
    for (const [id, key] of read.material) {
      const known = merged.get(id);
      merged.set(id, { id, ...(known ?? {}), ...(key.secret ? { secret: key.secret } : {}), ...(key.publicKey ? { publicKey: key.publicKey } : {}) });
      if (known?.secret && !key.secret) merged.set(id, { ...(merged.get(id) as KeyMaterial), secret: known.secret });
    }
  }
  return merged;
}

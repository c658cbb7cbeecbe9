import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { signingEnvOf } from '../../src/envfile/codec.js';
import { GateBlockedError, InvalidTransitionError, TargetContentError } from '../../src/errors.js';
import { loadStemSigningConfig, type SigningEnv } from '../../src/stem/signing-env.js';
import { ed25519PublicFromSeed } from '../../src/stem/keys.js';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';
import { V1 } from '../stem/vectors.js';
import { createHarness, UNRELATED_LINES, type Harness } from '../helpers/ring.js';

const MINUTE = 60_000;

function env(h: Harness, target: string): SigningEnv {
  const result: SigningEnv = {};
  Object.assign(result, signingEnvOf(readFileSync(h.path(target)), target));
  return result;
}

function keyIds(h: Harness, target: string): { keys: string[]; active: string | null } {
  const config = loadStemSigningConfig(env(h, target));
  return { keys: [...config.verificationKeys.keys()], active: config.activeKeyId };
}

describe('a full HMAC rotation on dotenv targets', () => {
  it('moves stable → added → activated → stable with gates, keeping other lines byte for byte', async () => {
    const h = createHarness();
    const engine = h.engine();
    const old = h.initialKey.id;

    const started = await engine.start();
    expect(started.phase).toBe('added');
    const newId = started.newKey?.id as string;
    expect(newId).toMatch(/^ring-20261128-[0-9a-f]{4}$/);
    for (const target of ['producers', 'workers']) expect(keyIds(h, target)).toEqual({ keys: [old, newId], active: old });

    await expect(engine.advance()).rejects.toBeInstanceOf(GateBlockedError);
    expect(keyIds(h, 'producers').active).toBe(old);

    h.clock.increment(10 * MINUTE);
    const activated = await engine.advance();
    expect(activated.phase).toBe('activated');
    for (const target of ['producers', 'workers']) expect(keyIds(h, target)).toEqual({ keys: [old, newId], active: newId });

    h.clock.increment(30 * MINUTE);
    await expect(engine.advance()).rejects.toThrow(/soaking: 30m left/);
    h.clock.increment(30 * MINUTE);
    const dropped = await engine.advance();
    expect(dropped.phase).toBe('stable');
    for (const target of ['producers', 'workers']) {
      expect(keyIds(h, target)).toEqual({ keys: [newId], active: newId });
      const content = readFileSync(h.path(target), 'utf8');
      expect(content.startsWith(UNRELATED_LINES)).toBe(true);
      expect(content.endsWith('# tail comment\n')).toBe(true);
      expect(statSync(h.path(target)).mode & 0o777).toBe(0o600);
    }

    const status = await engine.status();
    expect(status.phase).toBe('stable');
    expect(status.keys).toEqual([expect.objectContaining({ id: newId, active: true, presentIn: ['producers', 'workers'] })]);

    const actions = (await h.deps().store.readAudit('ring')).events.map((event) => `${event.action}:${event.outcome}`);
    expect(actions).toEqual(['adopt:ok', 'start:planned', 'start:ok', 'advance:blocked', 'advance:planned', 'advance:ok', 'advance:blocked', 'advance:planned', 'advance:ok']);
  });

  it('a signature made by the new key verifies on a worker config only after add-new', async () => {
    const h = createHarness();
    const engine = h.engine();
    const beforeWorker = loadStemSigningConfig(env(h, 'workers'));
    await engine.start();
    h.clock.increment(10 * MINUTE);
    await engine.advance();
    const producer = loadStemSigningConfig(env(h, 'producers'));
    const signed = signEnvelope(V1, producer);
    expect(verifyEnvelope(signed, beforeWorker)).toMatchObject({ ok: false, message: expect.stringContaining('unknown signing key') });
    expect(verifyEnvelope(signed, loadStemSigningConfig(env(h, 'workers')))).toMatchObject({ ok: true });
  });

  it('refuses commands that do not fit the phase', async () => {
    const h = createHarness();
    const engine = h.engine();
    await expect(engine.advance()).rejects.toBeInstanceOf(InvalidTransitionError);
    await expect(engine.abort()).rejects.toBeInstanceOf(InvalidTransitionError);
    await engine.start();
    await expect(engine.start()).rejects.toBeInstanceOf(InvalidTransitionError);
  });

  it('overrides let a blocking gate through, and are audited with the reason', async () => {
    const h = createHarness();
    const engine = h.engine();
    await engine.start();
    const result = await engine.advance({ overrides: [{ gate: 'soak', reason: 'incident 42' }] });
    expect(result.phase).toBe('activated');
    expect(result.gates[0]).toMatchObject({ name: 'soak', verdict: 'wait', overridden: { reason: 'incident 42' } });
    const overrides = (await h.deps().store.readAudit('ring')).events.filter((event) => event.action === 'override');
    expect(overrides).toEqual([expect.objectContaining({ outcome: 'overridden', details: expect.objectContaining({ gate: 'soak', reason: 'incident 42' }) })]);
    await expect(engine.advance({ overrides: [{ gate: 'nope', reason: 'x' }] })).rejects.toThrow(/no such gate/);
  });

  it('an approval gate passes only with a recorded approval; --approve records one', async () => {
    const h = createHarness({ gates: { beforeActivate: [{ type: 'approval' }], beforeDrop: [] } });
    const engine = h.engine();
    await engine.start();
    const error = await engine.advance().catch((e: unknown) => e as Error);
    expect(error.message).toMatch(/approval \(wait\): the activate of rotation rot-\S+ needs a recorded approval: run `stem-rotor approve ring --reason "…"` \(or `stem-rotor rotate advance ring --approve`\)/);
    expect(error.message).toContain('next: once the evidence changes, run `stem-rotor rotate advance ring` again');
    expect(error.message).toContain('`stem-rotor rotate advance ring --override approval --reason "…"`');
    expect((await engine.advance({ approve: true })).phase).toBe('activated');
    expect((await engine.advance()).phase).toBe('stable');
  });

  it('dry runs write nothing anywhere', async () => {
    const h = createHarness();
    const before = readFileSync(h.path('producers'));
    const plan = await h.engine().start({ dryRun: true });
    expect(plan.outcome).toBe('planned');
    expect(plan.writes).toEqual([
      expect.objectContaining({ target: 'producers', change: true, fields: ['STEM_SIGNING_KEYS'] }),
      expect.objectContaining({ target: 'workers', change: true }),
    ]);
    expect(readFileSync(h.path('producers'))).toEqual(before);
    expect(await h.deps().store.load('ring')).toBeNull();
    expect((await h.deps().store.readAudit()).events).toEqual([]);
  });

  it('honours field mappings', async () => {
    const fields = { STEM_SIGNING_KEYS: 'APP_KEYS', STEM_SIGNING_ACTIVE_KEY: 'APP_ACTIVE', STEM_SIGNING_ALGORITHM: 'APP_ALG' };
    const h = createHarness({ targets: [{ name: 'app', fields }] });
    const started = await h.engine().start();
    const content = readFileSync(h.path('app'), 'utf8');
    expect(content).toContain(`APP_KEYS=${h.initialKey.id}:`);
    expect(content).toContain(`,${started.newKey?.id}:`);
    expect(content).not.toContain('STEM_SIGNING_KEYS');
  });
});

describe('Ed25519 rings with verifier targets', () => {
  const spec = { algorithm: 'ed25519' as const, targets: [{ name: 'producers' }, { name: 'workers', audience: 'verifiers' as const }] };

  it('verifiers get public keys only, first; signers get both halves; drop removes both', async () => {
    const h = createHarness(spec);
    const engine = h.engine();
    const started = await engine.start();
    const newId = started.newKey?.id as string;
    expect(started.writes.map((write) => ('target' in write ? write.target : ''))).toEqual(['workers', 'producers']);
    expect(h.progress.findIndex((line) => line.includes('workers: writing'))).toBeLessThan(h.progress.findIndex((line) => line.includes('producers: writing')));

    const workers = env(h, 'workers');
    expect(workers.STEM_SIGNING_PRIVATE_KEYS).toBeUndefined();
    expect(workers.STEM_SIGNING_ACTIVE_KEY).toBeUndefined();
    const producers = loadStemSigningConfig(env(h, 'producers'));
    const seed = producers.signingKeys.get(newId) as Buffer;
    expect(loadStemSigningConfig(workers).verificationKeys.get(newId)).toEqual(ed25519PublicFromSeed(seed));

    h.clock.increment(10 * 60_000);
    await engine.advance();
    const signed = signEnvelope(V1, loadStemSigningConfig(env(h, 'producers')));
    expect(verifyEnvelope(signed, loadStemSigningConfig(env(h, 'workers')))).toMatchObject({ ok: true, keyId: newId });

    h.clock.increment(60 * 60_000);
    await engine.advance();
    expect(Object.keys(Object.fromEntries(loadStemSigningConfig(env(h, 'workers')).verificationKeys))).toEqual([newId]);
    expect([...loadStemSigningConfig(env(h, 'producers')).signingKeys.keys()]).toEqual([newId]);
  });
});

describe('abort', () => {
  it('from added removes the new key with no gates', async () => {
    const h = createHarness();
    const engine = h.engine();
    await engine.start();
    const aborted = await engine.abort({ reason: 'changed my mind' });
    expect(aborted.phase).toBe('stable');
    expect(keyIds(h, 'producers')).toEqual({ keys: [h.initialKey.id], active: h.initialKey.id });
  });

  it('from activated rolls ACTIVE back, then removes the new key only after the drop gates pass', async () => {
    const h = createHarness();
    const engine = h.engine();
    const newId = (await engine.start()).newKey?.id as string;
    h.clock.increment(10 * MINUTE);
    await engine.advance();
    const rolledBack = await engine.abort();
    expect(rolledBack.phase).toBe('added');
    expect(rolledBack.message).toContain('the abort finishes (the new key is removed) with `stem-rotor rotate advance ring` once the drop gates pass');
    expect(keyIds(h, 'workers')).toEqual({ keys: [h.initialKey.id, newId], active: h.initialKey.id });
    expect((await engine.status()).rotation?.aborting).toBe(true);
    await expect(engine.abort()).rejects.toThrow(/abort blocked by 1 gate\(s\):[\s\S]*run `stem-rotor rotate abort ring` again/);
    h.clock.increment(60 * MINUTE);
    const finished = await engine.advance();
    expect(finished.phase).toBe('stable');
    expect(keyIds(h, 'workers')).toEqual({ keys: [h.initialKey.id], active: h.initialKey.id });
  });
});

describe('revoke', () => {
  it('of the active key in a stable ring: a fresh key replaces it in one write per target', async () => {
    const h = createHarness();
    const result = await h.engine().revoke(h.initialKey.id, { reason: 'leaked in a log' });
    const fresh = result.transition?.desired.activeKeyId as string;
    expect(fresh).not.toBe(h.initialKey.id);
    for (const target of ['producers', 'workers']) expect(keyIds(h, target)).toEqual({ keys: [fresh], active: fresh });
    const status = await h.engine().status();
    expect(status.revokedKeyIds).toEqual([h.initialKey.id]);
    expect(status.phase).toBe('stable');
  });

  it('of the new, not yet active key: removes it and ends the rotation', async () => {
    const h = createHarness();
    const engine = h.engine();
    const newId = (await engine.start()).newKey?.id as string;
    const result = await engine.revoke(newId, { reason: 'generated on a compromised host' });
    expect(result.phase).toBe('stable');
    expect(keyIds(h, 'producers')).toEqual({ keys: [h.initialKey.id], active: h.initialKey.id });
  });

  it('of the old key after activate: drops it at once, no gates', async () => {
    const h = createHarness();
    const engine = h.engine();
    const newId = (await engine.start()).newKey?.id as string;
    h.clock.increment(10 * MINUTE);
    await engine.advance();
    await engine.revoke(h.initialKey.id, { reason: 'old key leaked' });
    expect(keyIds(h, 'workers')).toEqual({ keys: [newId], active: newId });
  });

  it('of the active key while its successor passed the activate gates: promotes the successor', async () => {
    const h = createHarness();
    const engine = h.engine();
    const newId = (await engine.start()).newKey?.id as string;
    h.clock.increment(10 * MINUTE);
    await engine.advance();
    await engine.abort();
    // rolled back: old key active again, activate gates passed once
    await engine.revoke(h.initialKey.id, { reason: 'old key leaked' });
    expect(keyIds(h, 'workers')).toEqual({ keys: [newId], active: newId });
  });

  it('of the active key while the successor never passed gates: a fresh key, not the successor', async () => {
    const h = createHarness();
    const engine = h.engine();
    const newId = (await engine.start()).newKey?.id as string;
    const result = await engine.revoke(h.initialKey.id, { reason: 'leak' });
    const fresh = result.transition?.desired.activeKeyId as string;
    expect([h.initialKey.id, newId]).not.toContain(fresh);
    expect(keyIds(h, 'producers')).toEqual({ keys: [fresh], active: fresh });
  });

  it('refuses an unknown or already revoked key', async () => {
    const h = createHarness();
    const engine = h.engine();
    await expect(engine.revoke('nope', { reason: 'x' })).rejects.toBeInstanceOf(InvalidTransitionError);
    await engine.revoke(h.initialKey.id, { reason: 'x' });
    await expect(engine.revoke(h.initialKey.id, { reason: 'x' })).rejects.toThrow(/already revoked/);
  });

  it('pre-empts another orchestrator holding the lease; the old holder is fenced out', async () => {
    const h = createHarness();
    const store = h.deps().store;
    await h.engine().status();
    const other = await store.acquire('ring', { owner: 'cron', token: 'other', ttlMs: 60 * MINUTE });
    await expect(h.engine().start()).rejects.toThrow(/locked by cron until .*; when it is done, run `stem-rotor status ring` and then the next step it shows/);
    await h.engine().revoke(h.initialKey.id, { reason: 'leak' });
    const state = await store.load('ring');
    await expect(store.save(state!, other)).rejects.toThrow(/lease lost/);
  });
});

describe('refusing conflicting or unparseable targets (S7) — nothing written anywhere', () => {
  async function expectRefusal(h: Harness, change: () => void, pattern: RegExp, command: (h: Harness) => Promise<unknown> = (x) => x.engine().start()) {
    change();
    const before = ['producers', 'workers'].map((t) => readFileSync(h.path(t)));
    await expect(command(h)).rejects.toBeInstanceOf(TargetContentError);
    await expect(command(h)).rejects.toThrow(pattern);
    expect(['producers', 'workers'].map((t) => readFileSync(h.path(t)))).toEqual(before);
  }

  it('a target Stem would refuse', async () => {
    const h = createHarness();
    await expectRefusal(h, () => writeFileSync(h.path('workers'), 'STEM_SIGNING_KEYS=broken\nSTEM_SIGNING_ACTIVE_KEY=x\n'), /workers.*Stem would refuse/);
  });

  it('targets that disagree on first sight', async () => {
    const h = createHarness();
    const other = createHarness({ seed: 'other' });
    await expectRefusal(h, () => writeFileSync(h.path('workers'), readFileSync(other.path('workers'))), /fingerprint|disagrees/);
  });

  it('a target changed by someone else mid-rotation', async () => {
    const h = createHarness();
    await h.engine().start();
    h.clock.increment(10 * MINUTE);
    const foreign = createHarness({ seed: 'foreign' });
    await expectRefusal(h, () => writeFileSync(h.path('workers'), readFileSync(foreign.path('workers'))), /never had|fingerprint/, (x) => x.engine().advance());
  });

  it('an assignment duplicated in a dotenv file', async () => {
    const h = createHarness();
    await expectRefusal(h, () => writeFileSync(h.path('workers'), `${readFileSync(h.path('workers'), 'utf8')}STEM_SIGNING_ACTIVE_KEY=other\n`), /assigned twice/);
  });
});

describe('state saves', () => {
  it('a wave of parallel writes shares its saves: revoking across 12 targets saves three times, not twice per target', async () => {
    const h = createHarness({ targets: Array.from({ length: 12 }, (_, index) => ({ name: `t${index}` })) });
    const store = h.deps().store;
    let saves = 0;
    const save: typeof store.save = (...args) => ((saves += 1), store.save(...args));
    const counting = new Proxy(store, {
      get(target, property) {
        if (property === 'save') return save;
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const engine = h.engine({ store: counting });
    await engine.start();
    saves = 0;
    const result = await engine.revoke('ring-20260101-0001', { reason: 'leak' });
    expect(result.writes.filter((write) => 'status' in write && write.status === 'verified')).toHaveLength(12);
    // the plan (with the replacement key), the wave's "writing" records, the completion with every
    // "verified" record; one save per record would be 26
    expect(saves).toBe(3);
    const state = await store.load('ring');
    expect(state?.transition).toBeNull();
    expect(state?.revokedKeyIds).toEqual(['ring-20260101-0001']);
  });
});

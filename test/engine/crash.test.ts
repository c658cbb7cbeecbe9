/**
 * S4: a crash before or after any target write, followed by the next command, converges on the
 * crash-free result. A "crash" abandons the engine mid-flight and leaves its lease un-released,
 * as a killed process would; the next engine is new, with fresh providers.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { signingEnvOf } from '../../src/envfile/codec.js';
import type { Provider } from '../../providers/types.js';
import type { TargetConfig } from '../../src/config/schema.js';
import { loadStemSigningConfig, type SigningEnv } from '../../src/stem/signing-env.js';
import { keyFingerprint } from '../../src/stem/keys.js';
import type { StateStore } from '../../src/store/types.js';
import { createHarness, dotenvFor, UNRELATED_LINES, type Harness, type RingSpec } from '../helpers/ring.js';

class Crash extends Error {}

interface CrashPlan {
  /** Which provider write, or which state save when `at` is 'save'. */
  readonly write: number;
  readonly when: 'before' | 'after';
  readonly at?: 'write' | 'save';
}

/** Once a process has crashed, nothing it does takes effect any more (retries included). */
interface Process {
  dead: boolean;
}

function alive<T>(process: Process, action: () => T): T {
  if (process.dead) throw new Crash('the process is dead');
  return action();
}

function crashingProviders(plan: CrashPlan | null, counter: { writes: number }, process: Process): (target: TargetConfig) => Promise<Provider> {
  return async (target) => {
    const real = dotenvFor(target);
    return {
      providerName: real.providerName,
      location: real.location,
      read: (fields) => alive(process, () => real.read(fields)),
      async write(request) {
        const index = alive(process, () => counter.writes++);
        if (plan && plan.at !== 'save' && index === plan.write && plan.when === 'before') {
          process.dead = true;
          throw new Crash(`crash before write ${index}`);
        }
        const result = await real.write(request);
        if (plan && plan.at !== 'save' && index === plan.write && plan.when === 'after') {
          process.dead = true;
          throw new Crash(`crash after write ${index}`);
        }
        return result;
      },
    };
  };
}

/** A dead process saves nothing more and never releases its lease. */
function storeOf(store: StateStore, process: Process, plan: CrashPlan | null = null, counter = { saves: 0 }): StateStore {
  return {
    load: (ring) => alive(process, () => store.load(ring)),
    save: async (...args) => {
      const index = alive(process, () => counter.saves++);
      const crashHere = plan?.at === 'save' && index === plan.write;
      if (crashHere && plan.when === 'before') {
        process.dead = true;
        throw new Crash(`crash before save ${index}`);
      }
      await store.save(...args);
      if (crashHere) {
        process.dead = true;
        throw new Crash(`crash after save ${index}`);
      }
    },
    acquire: (...args) => alive(process, () => store.acquire(...args)),
    release: async (lease) => (process.dead ? undefined : store.release(lease)),
    appendAudit: (event) => alive(process, () => store.appendAudit(event)),
    readAudit: (ring) => alive(process, () => store.readAudit(ring)),
    verifyAudit: () => store.verifyAudit(),
    residue: (ring) => store.residue(ring),
    close: () => store.close(),
  };
}

type Step = 'start' | 'advance';
/**
 * adopt + per transition: plan, "writing" per target (the first target's "verified" rides along
 * with the second's "writing"; the last one's with the completion), complete — 1 + 3 × 4.
 */
const SAVES = 13;
const SCRIPT: readonly { step: Step; waitMs: number }[] = [
  { step: 'start', waitMs: 0 },
  { step: 'advance', waitMs: 10 * 60_000 },
  { step: 'advance', waitMs: 60 * 60_000 },
];

interface Outcome {
  readonly phase: string;
  readonly targets: Record<string, { keys: string[]; active: string | null; fingerprints: string[]; rest: string }>;
  readonly stateKeys: string[];
}

function observe(h: Harness, spec: RingSpec): Promise<Outcome> {
  const algorithm = spec.algorithm ?? 'hmac-sha256';
  const targets: Outcome['targets'] = {};
  for (const target of h.ring.targets) {
    const content = readFileSync(h.path(target.name), 'utf8');
    const env: SigningEnv = {};
    Object.assign(env, signingEnvOf(content, target.name));
    const config = loadStemSigningConfig(env);
    const keys = [...config.verificationKeys.keys()];
    targets[target.name] = {
      keys,
      active: config.activeKeyId,
      fingerprints: keys.map((id) => keyFingerprint(algorithm, algorithm === 'ed25519' ? { id, publicKey: config.verificationKeys.get(id) } : { id, secret: config.verificationKeys.get(id) })),
      rest: content.split('\n').filter((line) => !line.startsWith('STEM_SIGNING_')).join('\n'),
    };
  }
  return h.deps().store.load('ring').then((state) => ({ phase: state?.rotation?.phase ?? 'stable', targets, stateKeys: state?.keys.map((k) => `${k.id}=${k.fingerprint}`) ?? [] }));
}

async function runScript(spec: RingSpec, plan: CrashPlan | null): Promise<{ outcome: Outcome; crashed: boolean; resumed: boolean; h: Harness; saves: number; writes: number }> {
  const h = createHarness(spec);
  const counter = { writes: 0 };
  const saves = { saves: 0 };
  const first: Process = { dead: false };
  let engine = h.engine({ store: storeOf(h.deps().store, first, plan, saves), providerFor: crashingProviders(plan, counter, first), leaseTtlMs: 5 * 60_000 });
  let crashed = false;
  let resumed = false;
  for (let index = 0; index < SCRIPT.length; index += 1) {
    const { step, waitMs } = SCRIPT[index]!;
    h.clock.increment(waitMs);
    const phaseBefore = (await h.deps().store.load('ring'))?.rotation?.phase ?? 'stable';
    try {
      await engine[step]();
    } catch (error) {
      if (!(error instanceof Crash)) throw error;
      crashed = true;
      // A new process, after the dead one's lease expired, does what an operator reading `status` would:
      // resume an interrupted transition, or re-run the command if it never took effect.
      h.clock.increment(5 * 60_000 + 1);
      const next: Process = { dead: false };
      engine = h.engine({ store: storeOf(h.deps().store, next), providerFor: crashingProviders(null, counter, next) });
      const state = await h.deps().store.load('ring');
      if (state?.transition) {
        resumed = (await engine.advance()).outcome === 'resumed';
      } else if ((state?.rotation?.phase ?? 'stable') === phaseBefore) {
        await engine[step]();
      }
    }
  }
  return { outcome: await observe(h, spec), crashed, resumed, h, saves: saves.saves, writes: counter.writes };
}

/**
 * Key material generated after a crash before its first write differs, and a re-keyed rotation
 * uses another id; structure, agreement and (unless re-keyed) ids must not differ.
 */
function normalise(outcome: Outcome, anonymiseIds: boolean): unknown {
  const names = new Map<string, string>();
  const id = (value: string | null) => (value === null || !anonymiseIds ? value : names.get(value) ?? (names.set(value, `key${names.size}`), names.get(value)));
  return {
    phase: outcome.phase,
    targets: Object.fromEntries(Object.entries(outcome.targets).map(([name, t]) => [name, { keys: t.keys.map(id), active: id(t.active), rest: t.rest }])),
    stateKeyIds: outcome.stateKeys.map((entry) => id(entry.split('=')[0] as string)),
  };
}

function assertConverged(outcome: Outcome): void {
  const all = Object.values(outcome.targets);
  const first = all[0]!;
  for (const target of all) {
    expect(target.keys).toEqual(first.keys);
    expect(target.fingerprints).toEqual(first.fingerprints);
    expect(target.rest.startsWith(UNRELATED_LINES.trimEnd().split('\n')[0]!)).toBe(true);
  }
  expect(outcome.stateKeys).toEqual(first.keys.map((id, i) => `${id}=${first.fingerprints[i]}`));
}

describe.each<[string, RingSpec, number]>([
  ['HMAC, two signer targets', {}, 6],
  ['Ed25519, a verifier and a signer', { algorithm: 'ed25519', targets: [{ name: 'producers' }, { name: 'workers', audience: 'verifiers' }] }, 5],
])('crash-resume: %s', (_name, spec, writes) => {
  it('crash-free run makes the expected number of writes and ends stable on one key', async () => {
    const clean = await runScript(spec, null);
    expect(clean.crashed).toBe(false);
    expect(clean.outcome.phase).toBe('stable');
    assertConverged(clean.outcome);
    expect(Object.values(clean.outcome.targets)[0]!.keys).toHaveLength(1);
    const counted = (await clean.h.deps().store.readAudit('ring')).events.filter((e) => e.outcome === 'ok' && e.details?.transition).length;
    expect(counted).toBe(3);
    // the crash cases below crash at each of exactly these provider writes
    expect(clean.writes).toBe(writes);
  });

  const plans: CrashPlan[] = [];
  for (let write = 0; write < writes; write += 1) plans.push({ write, when: 'before' }, { write, when: 'after' });
  it.each(plans)('crash $when write $write, then resume → same result as crash-free', async (plan) => {
    const clean = await runScript(spec, null);
    const crashed = await runScript(spec, plan);
    expect(crashed.crashed).toBe(true);
    expect(crashed.resumed).toBe(true); // every crash at a target write leaves a transition to resume
    assertConverged(crashed.outcome);
    const rekeyed = (await crashed.h.deps().store.readAudit('ring')).events.some((event) => event.details?.rekeyed);
    expect(normalise(crashed.outcome, rekeyed)).toEqual(normalise(clean.outcome, rekeyed));
  });
});

describe('crash-resume at every state save (HMAC)', () => {
  it('counts the saves of a crash-free run', async () => {
    expect((await runScript({}, null)).saves).toBe(SAVES);
  });
  const plans: CrashPlan[] = [];
  for (let write = 0; write < SAVES; write += 1) plans.push({ write, when: 'before', at: 'save' }, { write, when: 'after', at: 'save' });
  it.each(plans)('crash $when save $write, then the next command → same result as crash-free', async (plan) => {
    const clean = await runScript({}, null);
    const crashed = await runScript({}, plan);
    expect(crashed.crashed).toBe(true);
    assertConverged(crashed.outcome);
    // a start re-run after a crash before its plan was saved draws a new random key id
    expect(normalise(crashed.outcome, true)).toEqual(normalise(clean.outcome, true));
  });
});

describe('re-keying when an Ed25519 seed never reached a signer', () => {
  it('a crash after the verifier got the new public key but before any signer got the seed abandons that key id', async () => {
    const spec: RingSpec = { algorithm: 'ed25519', targets: [{ name: 'producers' }, { name: 'workers', audience: 'verifiers' }] };
    const crashed = await runScript(spec, { write: 0, when: 'after' });
    assertConverged(crashed.outcome);
    const audit = (await crashed.h.deps().store.readAudit('ring')).events;
    const rekey = audit.find((event) => event.details?.rekeyed);
    expect(rekey?.details?.rekeyed).toMatchObject({ abandoned: expect.stringMatching(/^ring-/), replacement: expect.stringMatching(/^ring-/) });
    const abandoned = (rekey?.details?.rekeyed as { abandoned: string }).abandoned;
    for (const target of Object.values(crashed.outcome.targets)) expect(target.keys).not.toContain(abandoned);
  });

  it('an abort after the re-key, before anything else was written, does not drop the transition and leave the abandoned key behind (found by the model test)', async () => {
    const spec: RingSpec = { algorithm: 'ed25519', targets: [{ name: 'producers' }, { name: 'workers', audience: 'verifiers' }] };
    const h = createHarness(spec);
    const counter = { writes: 0 };
    const first: Process = { dead: false };
    // the verifier gets the new public key, then the process dies before the signer gets the seed
    const error = await h.engine({ store: storeOf(h.deps().store, first), providerFor: crashingProviders({ write: 0, when: 'after' }, counter, first) }).start().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Crash);
    h.clock.increment(5 * 60_000 + 1);
    // the resume re-keys (save 0), then dies before recording its first write (save 1): no write records, but the verifier holds the abandoned id
    const second: Process = { dead: false };
    await h.engine({ store: storeOf(h.deps().store, second, { write: 1, when: 'before', at: 'save' }), providerFor: crashingProviders(null, counter, second) }).advance().catch(() => undefined);
    expect((await h.deps().store.load('ring'))?.transition?.tolerated).toHaveLength(1);
    h.clock.increment(5 * 60_000 + 1);
    await h.engine().abort();
    const state = await h.deps().store.load('ring');
    const workers = (await observe(h, spec)).targets.workers as { keys: string[] };
    if (!state?.transition) expect(workers.keys.sort()).toEqual(state?.keys.map((key) => key.id).sort());
    h.clock.increment(61 * 60_000);
    await h.engine().advance().catch(() => undefined); // whatever is left converges
    assertConverged(await observe(h, spec));
  });
});

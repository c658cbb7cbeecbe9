/**
 * Property-based model test: 2–4 orchestrators (separate engines, one shared store and shared
 * targets) run random interleavings of start / advance / abort / revoke / run, with crashes at
 * random writes and saves, transient provider faults and store faults. After every step the
 * targets are read back and S1–S3, S7 (nothing unparseable), S8 (no secret in state or audit), S9
 * (other lines kept) and S10 (agreement whenever no transition is in flight) are checked, and S4 (the
 * next command converges) at the end of every run. A failure prints the seed and
 * path; replay with STEM_ROTOR_MODEL_SEED=<seed> STEM_ROTOR_MODEL_PATH=<path>.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signingEnvOf } from '../../src/envfile/codec.js';
import type { Provider } from '../../providers/types.js';
import type { TargetConfig } from '../../src/config/schema.js';
import { isRotorError } from '../../src/errors.js';
import { keyFingerprint } from '../../src/stem/keys.js';
import { loadStemSigningConfig, type SigningEnv } from '../../src/stem/signing-env.js';
import type { StateStore } from '../../src/store/types.js';
import { UNRELATED_LINES, createHarness, dotenvFor, type Harness } from '../helpers/ring.js';

const STEPS = Number(process.env.STEM_ROTOR_MODEL_STEPS ?? 10_000);
const PER_RUN = 40;

class Crash extends Error {}

interface Fault {
  /** Countdown to the next injected fault, per orchestrator process. */
  left: number;
  kind: 'crash' | 'transient';
}

type Command =
  | { readonly kind: 'start' | 'advance' | 'abort' | 'run'; readonly who: number; readonly wait: number; readonly fault: Fault | null }
  | { readonly kind: 'revoke'; readonly who: number; readonly wait: number; readonly active: boolean; readonly fault: Fault | null };

interface Observed {
  readonly keys: string[];
  readonly fingerprints: Map<string, string>;
  readonly active: string | null;
}

function observe(h: Harness): Map<string, Observed> {
  const result = new Map<string, Observed>();
  for (const target of h.ring.targets) {
    const env: SigningEnv = {};
    Object.assign(env, signingEnvOf(readFileSync(h.path(target.name)), target.name));
    const config = loadStemSigningConfig(env); // S7: always parseable
    const keys = [...config.verificationKeys.keys()];
    result.set(target.name, { keys, active: config.activeKeyId, fingerprints: new Map(keys.map((id) => [id, keyFingerprint('hmac-sha256', { id, secret: config.verificationKeys.get(id) })])) });
  }
  return result;
}

/** An orchestrator process: a crash makes everything it does afterwards fail, as if it were gone. */
function processFor(h: Harness, fault: Fault | null) {
  let dead = false;
  const hit = (): void => {
    if (dead) throw new Crash('dead');
    if (!fault) return;
    fault.left -= 1;
    if (fault.left !== 0) return;
    if (fault.kind === 'crash') {
      dead = true;
      throw new Crash('crash');
    }
    throw Object.assign(new Error('ECONNRESET (injected)'), { code: 'ECONNRESET' });
  };
  const store = h.deps().store;
  const wrapped: StateStore = {
    load: (ring) => store.load(ring),
    save: async (...args) => {
      hit();
      return store.save(...args);
    },
    acquire: (...args) => store.acquire(...args),
    release: async (lease) => (dead ? undefined : store.release(lease)),
    appendAudit: (event) => store.appendAudit(event),
    readAudit: (ring) => store.readAudit(ring),
    verifyAudit: () => store.verifyAudit(),
    residue: (ring) => store.residue(ring),
    close: () => store.close(),
  };
  const providerFor = async (target: TargetConfig): Promise<Provider> => {
    const real = dotenvFor(target);
    return {
      providerName: real.providerName,
      location: real.location,
      read: (fields) => real.read(fields),
      async write(request) {
        hit();
        return real.write(request);
      },
    };
  };
  return { store: wrapped, providerFor };
}

const commandArbitrary = (orchestrators: number): fc.Arbitrary<Command> =>
  fc.record({
    kind: fc.constantFrom('start', 'advance', 'advance', 'abort', 'run', 'revoke' as const),
    who: fc.integer({ min: 0, max: orchestrators - 1 }),
    wait: fc.constantFrom(0, 60_000, 11 * 60_000, 61 * 60_000),
    active: fc.boolean(),
    fault: fc.option(fc.record({ left: fc.integer({ min: 1, max: 6 }), kind: fc.constantFrom('crash', 'transient' as const) }), { freq: 3 }),
  }) as fc.Arbitrary<Command>;

/** `revoking`: the step ran a revoke, or resumed one a crash interrupted — both may skip S1/S2. */
async function check(h: Harness, before: Map<string, Observed>, revoking: boolean, secrets: Set<string>): Promise<Map<string, Observed>> {
  const after = observe(h);
  const state = await h.deps().store.load('ring');
  for (const [name, target] of after) {
    // S3: a target always has its active key
    expect(target.keys.length, name).toBeGreaterThan(0);
    expect(target.keys, name).toContain(target.active);
    // S1: a newly active key was held by every target beforehand (revoke excepted)
    const previous = before.get(name);
    if (previous && previous.active !== target.active && !revoking) {
      for (const [other, view] of before) expect(view.keys, `${other} lacked ${target.active} when ${name} activated it`).toContain(target.active);
    }
  }
  // S2: no key disappeared from a target while another target still had it active (revoke excepted)
  if (!revoking) {
    for (const [name, target] of after) {
      const removed = (before.get(name)?.keys ?? []).filter((id) => !target.keys.includes(id));
      for (const [other, view] of after) if (other !== name) expect(removed, `${name} dropped ${view.active} while ${other} has it active`).not.toContain(view.active);
    }
  }
  // one id, one key (no two targets hold different material under one id)
  const fingerprints = new Map<string, string>();
  for (const target of after.values()) {
    for (const [id, fingerprint] of target.fingerprints) {
      expect(fingerprints.get(id) ?? fingerprint, `key ${id}`).toBe(fingerprint);
      fingerprints.set(id, fingerprint);
    }
  }
  // S10: with no transition in flight, every target holds exactly the ring state
  if (state && !state.transition) {
    for (const target of after.values()) {
      expect([...target.keys].sort()).toEqual(state.keys.map((key) => key.id).sort());
      expect(target.active).toBe(state.activeKeyId);
    }
  }
  for (const target of h.ring.targets) {
    const env = readFileSync(h.path(target.name), 'utf8');
    // S9: every line that is not stem-rotor's is kept byte for byte
    expect(env.startsWith(UNRELATED_LINES), target.name).toBe(true);
    expect(env.endsWith('# tail comment\n'), target.name).toBe(true);
    for (const match of env.matchAll(/:([A-Za-z0-9+/=]{40,})/g)) secrets.add(match[1] as string);
  }
  return after;
}

async function execute(h: Harness, command: Command): Promise<void> {
  const { store, providerFor } = processFor(h, command.fault ? { ...command.fault } : null);
  const engine = h.engine({ store, providerFor, leaseTtlMs: 5 * 60_000, actor: { user: `orchestrator-${command.who}`, host: 'model' } });
  try {
    if (command.kind === 'revoke') {
      const state = await h.deps().store.load('ring');
      const keys = state?.keys.map((key) => key.id) ?? [];
      const keyId = command.active ? state?.activeKeyId : keys.find((id) => id !== state?.activeKeyId);
      if (keyId) await engine.revoke(keyId, { reason: 'model' });
    } else if (command.kind === 'run') await engine.runOnce();
    else await engine[command.kind]();
  } catch (error) {
    // Expected outcomes: crashes, leases held by a crashed or other orchestrator, gates, phase errors.
    if (error instanceof Crash || isRotorError(error)) return;
    if ((error as { code?: string }).code === 'ECONNRESET') return;
    throw error;
  }
}

describe('model: concurrent orchestrators, crashes and faults keep S1–S3, S7, S8, S10', () => {
  it(`holds over ${STEPS} generated steps`, async () => {
    const seed = process.env.STEM_ROTOR_MODEL_SEED ? Number(process.env.STEM_ROTOR_MODEL_SEED) : Date.now() % 2 ** 31;
    const path = process.env.STEM_ROTOR_MODEL_PATH;
    const property = fc.asyncProperty(
      fc.integer({ min: 2, max: 4 }).chain((orchestrators) => fc.array(commandArbitrary(orchestrators), { minLength: PER_RUN, maxLength: PER_RUN })),
      async (commands) => {
        const h = createHarness({ policy: { maxAge: '1h', autoAdvance: true }, targets: [{ name: 'producers' }, { name: 'workers' }, { name: 'beat' }] });
        const secrets = new Set<string>();
        let before = observe(h);
        for (const command of commands) {
          h.clock.increment(command.wait);
          const inFlight = (await h.deps().store.load('ring'))?.transition?.kind;
          await execute(h, command);
          before = await check(h, before, command.kind === 'revoke' || inFlight === 'revoke', secrets);
        }
        // finally every ring converges: the next commands resume whatever was left in flight
        h.clock.increment(6 * 60_000);
        const resuming = (await h.deps().store.load('ring'))?.transition?.kind;
        const outcome = await h.engine({ leaseTtlMs: 5 * 60_000 }).advance().then(
          (result) => result.message,
          (error: Error) => `${error.name}: ${error.message}`,
        );
        const state = await h.deps().store.load('ring');
        expect(state?.transition ?? null, `the final advance did not converge: ${outcome}\n${JSON.stringify({ keys: state?.keys, rotation: state?.rotation, transition: state?.transition, targets: [...observe(h)].map(([n, o]) => [n, o.keys, o.active]) })}`).toBeNull();
        await check(h, before, resuming === 'revoke', secrets);
        // S8: no key material in the state or the audit trail
        const stored = readdirSync(join(h.dir, 'state', 'rings')).map((file) => readFileSync(join(h.dir, 'state', 'rings', file), 'utf8')).join('\n') + readFileSync(join(h.dir, 'state', 'audit.jsonl'), 'utf8');
        for (const secret of secrets) expect(stored).not.toContain(secret);
      },
    );
    const runs = Math.max(1, Math.ceil(STEPS / PER_RUN));
    const result = await fc.check(property, { numRuns: runs, seed, ...(path ? { path } : {}), endOnFailure: true });
    if (result.failed) {
      throw new Error(`model failed — replay with STEM_ROTOR_MODEL_SEED=${result.seed} STEM_ROTOR_MODEL_PATH=${result.counterexamplePath}\n${String((result.errorInstance as Error | undefined)?.stack ?? result.errorInstance)}\n${fc.defaultReportMessage(result)}`);
    }
    expect(result.numRuns * PER_RUN).toBeGreaterThanOrEqual(STEPS);
  }, 600_000);
});

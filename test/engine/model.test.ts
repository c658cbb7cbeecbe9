/**
 * Property-based model test: 2–4 orchestrators (separate engines, one shared store and shared
 * targets) run random sequences of start / advance / abort / revoke / run — some truly at once, two
 * engines with operations in flight together — with crashes at random writes and saves, transient
 * provider faults and store faults, on HMAC rings and on Ed25519 rings with a verifier-only target.
 * After every target write S1 and S2 are checked between the target reads before and after it;
 * after every step the
 * targets are read back and S1–S3, S7 (nothing unparseable), S8 (no secret in state or audit), S9
 * (other lines kept) and S10 (agreement whenever no transition is in flight) are checked, and S4 (the
 * next command converges) at the end of every run. An internal error (a guard tripped: a bug) fails
 * the run, and across all runs rotations must really complete (every phase visited). A failure
 * prints the seed and path; replay with STEM_ROTOR_MODEL_SEED=<seed> STEM_ROTOR_MODEL_PATH=<path>.
 * STEM_ROTOR_MODEL_STEPS sets the size (CI: 10,000).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisServer } from '../helpers/redis-server.js';
import { signingEnvOf } from '../../src/envfile/codec.js';
import type { Provider } from '../../providers/types.js';
import type { TargetConfig } from '../../src/config/schema.js';
import { InternalError, isRotorError } from '../../src/errors.js';
import type { Algorithm } from '../../src/stem/signing-env.js';
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

type Command = (
  | { readonly kind: 'start' | 'advance' | 'abort' | 'run'; readonly who: number; readonly wait: number; readonly fault: Fault | null }
  | { readonly kind: 'revoke'; readonly who: number; readonly wait: number; readonly active: boolean; readonly fault: Fault | null }
) & {
  /** Runs at the same time as the next command (both engines' operations in flight together). */
  readonly concurrent: boolean;
  /** Stem's dead letters are unreadable while it runs: the stem-dlq gate must say unknown and hold. */
  readonly evidenceBroken: boolean;
};

interface Observed {
  readonly keys: string[];
  readonly fingerprints: Map<string, string>;
  readonly active: string | null;
}

function observe(h: Harness, algorithm: Algorithm): Map<string, Observed> {
  const result = new Map<string, Observed>();
  for (const target of h.ring.targets) {
    const env: SigningEnv = {};
    Object.assign(env, signingEnvOf(readFileSync(h.path(target.name)), target.name));
    const config = loadStemSigningConfig(env); // S7: always parseable
    const keys = [...config.verificationKeys.keys()];
    const material = (id: string) => (algorithm === 'ed25519' ? { id, publicKey: config.verificationKeys.get(id) } : { id, secret: config.verificationKeys.get(id) });
    result.set(target.name, { keys, active: config.activeKeyId, fingerprints: new Map(keys.map((id) => [id, keyFingerprint(algorithm, material(id))])) });
  }
  return result;
}

/** S1 and S2 between two reads of every target (a revoke may break both by design). */
function checkActivation(before: ReadonlyMap<string, Observed>, after: ReadonlyMap<string, Observed>, when: string): void {
  for (const [name, target] of after) {
    // S1: a newly active key was held by every target beforehand
    const previous = before.get(name);
    if (previous && target.active !== null && previous.active !== target.active) {
      for (const [other, view] of before) expect(view.keys, `${when}: ${other} lacked ${target.active} when ${name} activated it`).toContain(target.active);
    }
  }
  // S2: no key disappeared from a target while another target still had it active
  for (const [name, target] of after) {
    const removed = (before.get(name)?.keys ?? []).filter((id) => !target.keys.includes(id));
    for (const [other, view] of after) if (other !== name && view.active !== null) expect(removed, `${when}: ${name} dropped ${view.active} while ${other} has it active`).not.toContain(view.active);
  }
}

/** Checks S1/S2 after every target write of any orchestrator, against the reads after the previous one. */
class WriteMonitor {
  private last: Map<string, Observed>;
  private readonly h: Harness;
  private readonly algorithm: Algorithm;

  constructor(h: Harness, algorithm: Algorithm) {
    this.h = h;
    this.algorithm = algorithm;
    this.last = observe(h, algorithm);
  }

  async afterWrite(target: string): Promise<void> {
    const now = observe(this.h, this.algorithm);
    const transition = (await this.h.deps().store.load('ring'))?.transition;
    if (transition?.kind !== 'revoke') checkActivation(this.last, now, `write to ${target} (${transition?.kind ?? 'no transition'})`);
    this.last = now;
  }
}

/** An orchestrator process: a crash makes everything it does afterwards fail, as if it were gone. */
function processFor(h: Harness, fault: Fault | null, monitor: WriteMonitor) {
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
        const written = await real.write(request);
        await monitor.afterWrite(target.name);
        return written;
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
    concurrent: fc.constantFrom(false, false, true),
    evidenceBroken: fc.constantFrom(false, false, false, true),
  }) as fc.Arbitrary<Command>;

/**
 * After a step: `revoking` (it ran a revoke, or resumed one) or `concurrent` (two steps ran at once,
 * so S1/S2 are left to the write monitor) relax S1/S2 between the reads before and after.
 */
async function check(h: Harness, algorithm: Algorithm, before: Map<string, Observed>, relaxed: boolean, secrets: Set<string>): Promise<Map<string, Observed>> {
  const after = observe(h, algorithm);
  const state = await h.deps().store.load('ring');
  for (const [name, target] of after) {
    // S3: a target always has its active key (verifier-only targets have none)
    expect(target.keys.length, name).toBeGreaterThan(0);
    if (target.active !== null) expect(target.keys, name).toContain(target.active);
  }
  if (!relaxed) checkActivation(before, after, 'step');
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
    for (const [name, target] of after) {
      expect([...target.keys].sort(), `S10: ${name} against the ring state ${JSON.stringify({ keys: state.keys, rotation: state.rotation })}`).toEqual(state.keys.map((key) => key.id).sort());
      if (target.active !== null) expect(target.active).toBe(state.activeKeyId);
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

async function execute(h: Harness, command: Command, monitor: WriteMonitor): Promise<void> {
  const { store, providerFor } = processFor(h, command.fault ? { ...command.fault } : null, monitor);
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
    // A tripped guard is a bug, never an expected outcome.
    if (error instanceof InternalError) throw error;
    // Expected outcomes: crashes, leases held by a crashed or other orchestrator, gates, phase errors.
    if (error instanceof Crash || isRotorError(error)) return;
    if ((error as { code?: string }).code === 'ECONNRESET') return;
    throw error;
  }
}

/**
 * Fail-closed gating, from the audit trail: an activate was planned no sooner than `propagate` (10m)
 * after the start completed, a drop no sooner than `drain` (1h) after the activate or rollback.
 */
async function checkGating(h: Harness): Promise<void> {
  const finished = new Map<string, number>();
  for (const event of (await h.deps().store.readAudit('ring')).events) {
    const kind = event.details?.transition;
    if (typeof kind !== 'string') continue;
    const at = Date.parse(event.time);
    if (event.outcome === 'ok') finished.set(kind, at);
    if (event.outcome !== 'planned') continue;
    if (kind === 'activate') expect(at - (finished.get('start') ?? -Infinity), `activate planned ${event.time}, too soon after the start`).toBeGreaterThanOrEqual(10 * 60_000);
    if (kind === 'drop') expect(at - Math.max(finished.get('activate') ?? -Infinity, finished.get('rollback') ?? -Infinity), `drop planned ${event.time}, too soon after the activate`).toBeGreaterThanOrEqual(60 * 60_000);
  }
}

/** While the evidence was unreadable, no activate or drop may have been planned (fail closed). */
async function checkHeldWhileBroken(h: Harness, auditBefore: number): Promise<void> {
  const events = (await h.deps().store.readAudit('ring')).events.slice(auditBefore);
  const planned = events.filter((event) => event.outcome === 'planned' && (event.details?.transition === 'activate' || event.details?.transition === 'drop'));
  expect(planned.map((event) => `${event.details?.transition} at ${event.time}`), 'planned while the stem-dlq evidence was unreadable').toEqual([]);
}

/** Completed transitions by kind, across every run: the model must really rotate. */
const completed = new Map<string, number>();

async function countCompleted(h: Harness): Promise<void> {
  for (const event of (await h.deps().store.readAudit('ring')).events) {
    const kind = event.outcome === 'ok' ? event.details?.transition : undefined;
    if (typeof kind === 'string') completed.set(kind, (completed.get(kind) ?? 0) + 1);
  }
}

let redis: RedisServer;
let broker: Redis;
beforeAll(async () => {
  redis = await new RedisServer().start();
  broker = redis.client(0);
});
afterAll(async () => {
  broker.disconnect();
  await redis.stop();
});

describe('model: concurrent orchestrators, crashes and faults keep S1–S3, S7, S8, S10', () => {
  it(`holds over ${STEPS} generated steps`, async () => {
    const seed = process.env.STEM_ROTOR_MODEL_SEED ? Number(process.env.STEM_ROTOR_MODEL_SEED) : Date.now() % 2 ** 31;
    const path = process.env.STEM_ROTOR_MODEL_PATH;
    const property = fc.asyncProperty(
      fc.record({
        algorithm: fc.constantFrom<Algorithm>('hmac-sha256', 'ed25519'),
        commands: fc.integer({ min: 2, max: 4 }).chain((orchestrators) => fc.array(commandArbitrary(orchestrators), { minLength: PER_RUN, maxLength: PER_RUN })),
      }),
      async ({ algorithm, commands }) => {
        // Ed25519 rings have a verifier-only target, written first and never given a private key.
        const targets = algorithm === 'ed25519' ? [{ name: 'producers' }, { name: 'workers', audience: 'verifiers' as const }, { name: 'beat' }] : [{ name: 'producers' }, { name: 'workers' }, { name: 'beat' }];
        // Every gate slot also reads Stem's dead letters from a real redis-server, which some steps make unreadable.
        const dlq = { type: 'stem-dlq', clockSkew: '1s' };
        const gates = { beforeActivate: [{ type: 'soak' }, dlq], beforeDrop: [{ type: 'soak' }, dlq] };
        const h = createHarness({ algorithm, policy: { maxAge: '1h', autoAdvance: true }, targets, gates, stem: { broker: { url: redis.url(0) } } });
        await broker.del('stem:dead:model');
        const monitor = new WriteMonitor(h, algorithm);
        const secrets = new Set<string>();
        let before = observe(h, algorithm);
        for (let index = 0; index < commands.length; index += 1) {
          const command = commands[index] as Command;
          h.clock.increment(command.wait);
          const inFlight = (await h.deps().store.load('ring'))?.transition?.kind;
          const together = command.concurrent && index + 1 < commands.length ? [command, commands[(index += 1)] as Command] : [command];
          const broken = together.some((each) => each.evidenceBroken);
          const auditBefore = (await h.deps().store.readAudit('ring')).events.length;
          if (broken) await broker.lpush('stem:dead:model', '{"envelope": "not a dead letter'); // unparseable: could hide a failure
          await Promise.all(together.map((each) => execute(h, each, monitor)));
          if (broken) {
            await broker.del('stem:dead:model');
            await checkHeldWhileBroken(h, auditBefore);
          }
          before = await check(h, algorithm, before, together.length > 1 || together.some((each) => each.kind === 'revoke') || inFlight === 'revoke', secrets);
        }
        // finally every ring converges: the next commands resume whatever was left in flight
        h.clock.increment(6 * 60_000);
        const resuming = (await h.deps().store.load('ring'))?.transition?.kind;
        const outcome = await h.engine({ leaseTtlMs: 5 * 60_000 }).advance().then(
          (result) => result.message,
          (error: Error) => `${error.name}: ${error.message}`,
        );
        await countCompleted(h);
        await checkGating(h);
        const state = await h.deps().store.load('ring');
        expect(state?.transition ?? null, `the final advance did not converge: ${outcome}\n${JSON.stringify({ keys: state?.keys, rotation: state?.rotation, transition: state?.transition, targets: [...observe(h, algorithm)].map(([n, o]) => [n, o.keys, o.active]) })}`).toBeNull();
        await check(h, algorithm, before, resuming === 'revoke', secrets);
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
    // Progress: rotations really happened — started, activated, dropped, aborted and revoked.
    for (const kind of ['start', 'activate', 'drop', 'revoke']) expect(completed.get(kind) ?? 0, `completed ${kind} transitions`).toBeGreaterThanOrEqual(Math.max(1, Math.floor(STEPS / 2000)));
  }, 600_000);
});

/**
 * The built CLI SIGKILLed again and again at random points — during start-up, right as a target
 * write begins, and just after the first target was written — each kill followed by a normal
 * re-run. At the end: every target agrees with the ring, every target's ACTIVE key is among its
 * KEYS, no temp or lock file is left, and no key that ever existed is on disk outside the targets.
 * A failure prints STEM_ROTOR_CRASH_SEED to replay it.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signingEnvOf } from '../../src/envfile/codec.js';
import { loadStemSigningConfig } from '../../src/stem/signing-env.js';
import { BIN, cli, cliEnv, findLeaks, secretsIn } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

/** Iterate until this many runs were really killed (a run may finish before its kill point). */
const KILLS = 32;
const MAX_ITERATIONS = 120;
const seed = Number(process.env.STEM_ROTOR_CRASH_SEED ?? Date.now() % 1_000_000);

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function random(seedValue: number): () => number {
  let state = seedValue >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Trigger = 'startup' | 'writing' | 'after-first-write';

/** Runs the CLI and SIGKILLs it at the trigger; resolves with what it printed and whether it was killed. */
function runAndKill(args: readonly string[], trigger: Trigger, delayMs: number): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let killed = false;
    const kill = () => {
      if (child.exitCode === null && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    let armed = false;
    const arm = () => {
      if (!armed) {
        armed = true;
        setTimeout(kill, delayMs);
      }
    };
    if (trigger === 'startup') arm();
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (trigger === 'writing' && /: writing STEM_SIGNING/.test(stderr)) arm();
      if (trigger === 'after-first-write' && /: verified sha256:/.test(stderr)) arm();
    });
    child.stdout.resume();
    child.once('error', reject);
    child.once('close', (code) => resolve({ killed, code, stderr }));
  });
}

function filesUnder(root: string): string[] {
  return readdirSync(root).flatMap((entry) => {
    const path = join(root, entry);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe(`crash loop (STEM_ROTOR_CRASH_SEED=${seed})`, () => {
  it(`${KILLS} SIGKILLs at random points incl. after the first target write; every re-run converges`, { timeout: 600_000 }, async () => {
    const next = random(seed);
    const dir = tempDir('stem-rotor-crash-loop-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace('propagate: 3s', 'propagate: 0s').replace('drain: 3s', 'drain: 0s'));
    const targets = ['producers.env', 'workers.env'].map((file) => join(dir, file));
    const everSeen = new Set<string>();
    const collect = () => {
      for (const target of targets) for (const secret of secretsIn(target)) everSeen.add(secret);
    };
    const statePath = join(dir, 'state', 'rings', 'demo.json');
    /** The ring's state; before the first command adopts the ring there is none. */
    const state = () => (statSync(statePath, { throwIfNoEntry: false }) ? JSON.parse(readFileSync(statePath, 'utf8')) : { rotation: null, transition: null }) as { rotation: unknown; transition: unknown };
    const run = (...args: string[]) => cli([...args, '--config', config]);
    expect(run('status', 'demo').code).toBe(0);
    collect();
    const kills: Record<Trigger, number> = { startup: 0, writing: 0, 'after-first-write': 0 };
    const triggers: Trigger[] = ['startup', 'writing', 'after-first-write'];

    const killCount = () => kills.startup + kills.writing + kills['after-first-write'];
    for (let iteration = 0; killCount() < KILLS; iteration += 1) {
      expect(iteration, `seed ${seed}: only ${JSON.stringify(kills)} kills`).toBeLessThan(MAX_ITERATIONS);
      const context = `seed ${seed}, iteration ${iteration}`;
      const current = state();
      const command = current.rotation || current.transition ? ['rotate', 'advance', 'demo'] : ['rotate', 'start', 'demo'];
      const trigger = triggers[iteration % 3] as Trigger;
      const delay = Math.floor(next() * (trigger === 'startup' ? 150 : trigger === 'writing' ? 4 : 10));
      const outcome = await runAndKill([...command, '--config', config], trigger, delay);
      if (outcome.killed) kills[trigger] += 1;
      else expect(outcome.code, `${context}: ${outcome.stderr}`).toBe(0);
      collect();
      // the normal re-run: resume whatever the kill interrupted
      if (state().transition) {
        const resumed = run('rotate', 'advance', 'demo');
        expect(resumed.code, `${context}: ${resumed.stderr}`).toBe(0);
      }
      collect();
      const check = run('check', 'demo');
      expect(check.code, `${context}: ${check.stdout}${check.stderr}`).toBe(0);
    }
    // one uninterrupted rotation takes the lease for every step: what the last kill left is cleaned up
    if (state().rotation) expect(run('rotate', 'abort', 'demo').code).toBe(0);
    while (state().rotation) expect(run('rotate', 'advance', 'demo').code).toBe(0); // an abort from activated rolls back first
    for (const step of [['rotate', 'start', 'demo'], ['rotate', 'advance', 'demo'], ['rotate', 'advance', 'demo']]) {
      const result = run(...step);
      expect(result.code, `seed ${seed}: ${step.join(' ')}: ${result.stderr}`).toBe(0);
      collect();
    }

    expect(kills['after-first-write'], `seed ${seed}: kills after the first target write`).toBeGreaterThanOrEqual(6);
    expect(run('check', 'demo').code).toBe(0);
    for (const target of targets) {
      const signing = loadStemSigningConfig(signingEnvOf(readFileSync(target), target));
      expect([...signing.verificationKeys.keys()], target).toContain(signing.activeKeyId);
    }
    const files = filesUnder(dir);
    expect(files.filter((file) => /\.tmp$|\.lock$|\.mutex$/.test(file)), `seed ${seed}`).toEqual([]);
    const elsewhere = files.filter((file) => !targets.includes(file)).map((file) => readFileSync(file, 'latin1'));
    expect(everSeen.size).toBeGreaterThan(8);
    expect(findLeaks(everSeen, elsewhere), `seed ${seed}: key material outside the targets`).toEqual([]);
  });
});

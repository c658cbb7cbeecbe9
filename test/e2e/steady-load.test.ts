/**
 * A Stem fleet under steady load (a producer at a few hundred envelopes/s, two workers consuming),
 * with a restarter that behaves like Reloader: each process restarts a couple of seconds after its
 * env file changes. `stem-rotor run --interval` rotates the ring end to end with the default-style
 * evidence gates (stem-workers measuring clocks, stem-signers, stem-backlog, stem-dlq), and not one
 * envelope is dead-lettered.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cliEnv, findLeaks, outputs } from '../helpers/cli.js';
import { killProcess, redisForTests } from '../helpers/redis-server.js';
import { stemDemo } from '../helpers/stem-demo.js';
import { SimulatedWorker, StemFleet, loadEnvFile } from '../helpers/stem-fleet.js';

const redis = redisForTests();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FleetRun {
  readonly finished: boolean;
  readonly totals: { enqueued: number; ok: number; dead: number; restarts: number };
  readonly log: string;
  readonly status: { phase: string; gates: { name: string; verdict: string; reason: string }[] };
  readonly initialKey: string | null;
  readonly activeKey: string | null;
}

/**
 * Runs the loaded fleet beside `run --interval` until the ring is stable on a new key or `budgetMs`
 * passes. `restartDelayMs`: how long after a file change the restarter restarts a process;
 * `restartProducer: false` models a producer nobody restarts.
 */
async function runFleet(options: { readonly budgetMs: number; readonly restartDelayMs: number; readonly restartProducer: boolean }): Promise<FleetRun> {
  await redis.broker.flushall();
  await redis.backend.flushall();
  const demo = stemDemo(redis.server, 'stem-rotor-load-', (config) =>
    config
      .replace('maxAge: 30d', 'maxAge: 1ms')
      .replace('propagate: 3s', 'propagate: 1s')
      .replace('drain: 3s', 'drain: 1s')
      .replace(`        url: ${redis.server.url(0)}\n`, `        url: ${redis.server.url(0)}\n      backend:\n        url: ${redis.server.url(1)}\n      heartbeatInterval: 1s\n`)
      .replace(
        /    gates:\n[\s\S]*?\n    stem:/,
        [
          '    gates:',
          '      beforeActivate: [{ type: soak }, { type: stem-workers, minWorkers: 2 }, { type: stem-dlq }]',
          '      beforeDrop: [{ type: soak }, { type: stem-workers, minWorkers: 2 }, { type: stem-signers, grace: 1s }, { type: stem-backlog }, { type: stem-dlq }]',
          '    stem:',
        ].join('\n'),
      ),
  );
  const producersPath = join(demo.dir, 'producers.env');
  const workersPath = join(demo.dir, 'workers.env');
  const initialKey = loadEnvFile(producersPath).activeKeyId;
  const fleet = new StemFleet(redis.broker, redis.backend);
  let producer = loadEnvFile(producersPath);
  const workers = [new SimulatedWorker(fleet, 'worker-1', workersPath, 1001), new SimulatedWorker(fleet, 'worker-2', workersPath, 1002)];
  const totals = { enqueued: 0, ok: 0, dead: 0, restarts: 0 };
  let running = true;

  const produce = async () => {
    while (running) {
      for (let i = 0; i < 3; i += 1) await fleet.enqueue(producer);
      totals.enqueued += 3;
      await sleep(10);
    }
  };
  const consume = async (worker: SimulatedWorker) => {
    while (running) {
      const { ok, dead } = await worker.consume('default', 200);
      totals.ok += ok;
      totals.dead += dead;
      await sleep(20);
    }
  };
  const heartbeats = async () => {
    while (running) {
      for (const worker of workers) await worker.heartbeat();
      await sleep(300);
    }
  };
  // Reloader: a process restarts a fixed delay after its file changed.
  const restarter = async () => {
    const seen = { producers: statSync(producersPath).mtimeMs, workers: statSync(workersPath).mtimeMs };
    while (running) {
      await sleep(100);
      for (const file of ['producers', 'workers'] as const) {
        const path = file === 'producers' ? producersPath : workersPath;
        const mtime = statSync(path).mtimeMs;
        if (mtime === seen[file]) continue;
        seen[file] = mtime;
        if (file === 'producers' && !options.restartProducer) continue;
        setTimeout(() => {
          totals.restarts += 1;
          if (file === 'producers') producer = loadEnvFile(producersPath);
          else for (const worker of workers) worker.restart();
        }, options.restartDelayMs);
      }
    }
  };
  const loops = [produce(), ...workers.map(consume), heartbeats(), restarter()];
  await sleep(500);
  const daemon = spawn(process.execPath, [BIN, 'run', '--interval', '1s', '--config', demo.config], { env: cliEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const statePath = join(demo.dir, 'state', 'rings', 'demo.json');
  const deadline = Date.now() + options.budgetMs;
  let finished = false;
  while (Date.now() < deadline && !finished) {
    await sleep(250);
    try {
      const state = JSON.parse(readFileSync(statePath, 'utf8')) as { rotation: unknown; transition: unknown; activeKeyId: string; keys: unknown[] };
      finished = state.rotation === null && state.transition === null && state.activeKeyId !== initialKey && state.keys.length === 1;
    } catch {
      // not adopted yet
    }
  }
  // keep the fleet running a little after the drop: a restart that reloads only the new key must not dead-letter anything
  await sleep(2500);
  if (daemon.exitCode === null && daemon.signalCode === null) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      daemon.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      daemon.kill('SIGTERM'); // finishes the ring in progress, then exits
    });
  }
  await killProcess(daemon);
  const status = JSON.parse(demo.run('status', 'demo', '--json').stdout) as FleetRun['status'];
  running = false;
  await Promise.all(loops);
  demo.collect();
  expect(findLeaks(demo.secrets, [log, ...outputs])).toEqual([]);
  return { finished, totals, log, status, initialKey, activeKey: loadEnvFile(producersPath).activeKeyId };
}

describe('steady load', () => {
  it('run --interval rotates a loaded fleet with a Reloader-like restarter (2 s), with zero dead letters', { timeout: 90_000 }, async () => {
    const run = await runFleet({ budgetMs: 60_000, restartDelayMs: 2000, restartProducer: true });
    expect(run.finished, `the ring did not complete a rotation in 60 s; run log:\n${run.log.slice(-3000)}`).toBe(true);
    expect(run.totals.dead).toBe(0);
    expect(await redis.broker.keys('stem:dead:*')).toEqual([]);
    expect(run.totals.enqueued).toBeGreaterThan(1000); // a few hundred a second for as long as the rotation took
    expect(run.totals.ok).toBeGreaterThan(run.totals.enqueued * 0.9);
    expect(run.totals.restarts).toBeGreaterThanOrEqual(5); // both files changed at add-new, activate and drop
    expect(run.activeKey).not.toBe(run.initialKey);
  });

  it('a producer nobody restarts: the drop never happens (stem-signers says which queue), and nothing is dead-lettered', { timeout: 60_000 }, async () => {
    const run = await runFleet({ budgetMs: 12_000, restartDelayMs: 2000, restartProducer: false });
    expect(run.finished).toBe(false);
    expect(run.status.phase).toBe('activated');
    expect(run.status.gates.find((gate) => gate.name === 'stem-signers')).toMatchObject({ verdict: 'wait', reason: expect.stringMatching(/a signer has not switched .* on default signed with/) });
    expect(run.totals.dead).toBe(0);
  });

  it('workers restarted within the start-up allowance of the write: the ring waits and says it cannot prove they loaded the file, with the next step', { timeout: 60_000 }, async () => {
    const run = await runFleet({ budgetMs: 8000, restartDelayMs: 300, restartProducer: true });
    expect(run.finished).toBe(false);
    expect(run.status.phase).toBe('added');
    const workers = run.status.gates.find((gate) => gate.name === 'stem-workers');
    expect(workers).toMatchObject({ verdict: 'wait', reason: expect.stringMatching(/^cannot prove 2 of 2 live workers loaded the new file: .* restarted \d+ms after the write, within the start-up allowance \(1000ms\)/) });
    expect(workers?.reason).toContain('Restart them once more, or, if you know they read it: stem-rotor rotate advance demo --override stem-workers --reason');
    expect(run.totals.dead).toBe(0);
  });
});

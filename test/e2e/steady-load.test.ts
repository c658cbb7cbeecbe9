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
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { RedisServer, killProcess } from '../helpers/redis-server.js';
import { stemDemo } from '../helpers/stem-demo.js';
import { SimulatedWorker, StemFleet, loadEnvFile } from '../helpers/stem-fleet.js';

let server: RedisServer;
let broker: Redis;
let backend: Redis;

beforeAll(async () => {
  server = await new RedisServer().start();
  broker = server.client(0);
  backend = server.client(1);
});
afterAll(async () => {
  broker.disconnect();
  backend.disconnect();
  await server.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('steady load', () => {
  it('run --interval rotates a loaded fleet with a Reloader-like restarter, with zero dead letters', { timeout: 90_000 }, async () => {
    const demo = stemDemo(server, 'stem-rotor-load-', (config) =>
      config
        .replace('maxAge: 30d', 'maxAge: 1ms')
        .replace('propagate: 3s', 'propagate: 1s')
        .replace('drain: 3s', 'drain: 1s')
        .replace(`        url: ${server.url(0)}\n`, `        url: ${server.url(0)}\n      backend:\n        url: ${server.url(1)}\n      heartbeatInterval: 1s\n`)
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
    const fleet = new StemFleet(broker, backend);
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
    // Reloader: a process restarts two seconds after its file changed.
    const restarter = async () => {
      const seen = { producers: statSync(producersPath).mtimeMs, workers: statSync(workersPath).mtimeMs };
      while (running) {
        await sleep(100);
        for (const file of ['producers', 'workers'] as const) {
          const path = file === 'producers' ? producersPath : workersPath;
          const mtime = statSync(path).mtimeMs;
          if (mtime === seen[file]) continue;
          seen[file] = mtime;
          setTimeout(() => {
            totals.restarts += 1;
            if (file === 'producers') producer = loadEnvFile(producersPath);
            else for (const worker of workers) worker.restart();
          }, 2000);
        }
      }
    };
    const loops = [produce(), ...workers.map(consume), heartbeats(), restarter()];
    await sleep(500);
    const daemon = spawn(process.execPath, [BIN, 'run', '--interval', '1s', '--config', demo.config], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    daemon.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const statePath = join(demo.dir, 'state', 'rings', 'demo.json');
    const deadline = Date.now() + 60_000;
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
    running = false;
    await Promise.all(loops);
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
    demo.collect();
    expect(finished, `the ring did not complete a rotation in 60 s; run log:\n${log.slice(-3000)}`).toBe(true);
    expect(totals.dead).toBe(0);
    expect(await broker.keys('stem:dead:*')).toEqual([]);
    expect(totals.enqueued).toBeGreaterThan(2000);
    expect(totals.ok).toBeGreaterThan(totals.enqueued * 0.9);
    expect(totals.restarts).toBeGreaterThanOrEqual(5); // both files changed at add-new, activate and drop
    expect(loadEnvFile(producersPath).activeKeyId).not.toBe(initialKey);
  });
});

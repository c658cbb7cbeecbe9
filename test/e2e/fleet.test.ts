/**
 * A simulated Stem fleet on a real redis-server, rotated only by repeated `stem-rotor run --once`
 * (the built binary) with autoAdvance: gates hold until the fleet really is ready, then pass.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { RedisServer } from '../helpers/redis-server.js';
import { SimulatedWorker, StemFleet, loadEnvFile } from '../helpers/stem-fleet.js';

let server: RedisServer;
let broker: Redis;
let backend: Redis;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
beforeEach(async () => {
  await broker.flushall();
});

function setup() {
  const dir = tempDir('stem-rotor-fleet-');
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'stem-rotor.yaml');
  // simulated workers stamp startedAt right after reading their file: no start-up allowance needed
  const workers = { type: 'stem-workers', minWorkers: 2, clockSkew: '10ms', startupAllowance: '10ms' };
  const ring = {
    version: 1,
    store: { type: 'file', dir: 'state' },
    rings: {
      demo: {
        algorithm: 'hmac-sha256',
        keyIdPrefix: 'demo-',
        policy: { maxAge: '1ms', propagate: '1s', drain: '1s', autoAdvance: true },
        stem: { broker: { url: server.url(0) }, backend: { url: server.url(1) } },
        gates: {
          beforeActivate: [{ type: 'soak' }, workers, { type: 'stem-dlq', clockSkew: '1s' }],
          beforeDrop: [{ type: 'soak' }, workers, { type: 'stem-signers', grace: '200ms' }, { type: 'stem-backlog' }, { type: 'stem-dlq', clockSkew: '1s' }],
        },
        targets: [
          { name: 'producers', provider: 'dotenv', path: 'producers.env' },
          { name: 'workers', provider: 'dotenv', path: 'workers.env' },
        ],
      },
    },
  };
  writeFileSync(config, JSON.stringify(ring));
  const jsonConfig = join(dir, 'stem-rotor.json');
  writeFileSync(jsonConfig, readFileSync(config));
  const fleet = new StemFleet(broker, backend);
  const producerEnv = join(dir, 'producers.env');
  const fleetWorkers = [new SimulatedWorker(fleet, 'worker-1', join(dir, 'workers.env'), 1001), new SimulatedWorker(fleet, 'worker-2', join(dir, 'workers.env'), 1002)];
  let producer = loadEnvFile(producerEnv);
  const run = () => {
    const result = cli(['run', '--once', '--json', '--config', jsonConfig]);
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout)[0] as { phase: string; outcome: string; message: string; action: string };
  };
  return {
    dir,
    fleet,
    workers: fleetWorkers,
    run,
    heartbeat: () => Promise.all(fleetWorkers.map((worker) => worker.heartbeat())),
    restartProducer: () => {
      producer = loadEnvFile(producerEnv);
    },
    enqueue: (count: number) => Promise.all(Array.from({ length: count }, () => fleet.enqueue(producer))),
    consumeAll: async () => {
      const totals = { ok: 0, dead: 0 };
      for (const worker of fleetWorkers) {
        const { ok, dead } = await worker.consume('default', 1000);
        totals.ok += ok;
        totals.dead += dead;
      }
      return totals;
    },
  };
}

describe('a Stem fleet rotated by run --once', () => {
  it('holds at each gate until the fleet is ready, then completes with no dead letters', async () => {
    const f = setup();
    await f.heartbeat();
    await f.enqueue(5);
    expect(await f.consumeAll()).toEqual({ ok: 5, dead: 0 });

    expect(f.run()).toMatchObject({ action: 'start', phase: 'added' });
    await sleep(1100);
    await f.heartbeat();
    const waiting = f.run();
    expect(waiting).toMatchObject({ outcome: 'blocked', phase: 'added' });
    expect(waiting.message).toMatch(/stem-workers \(wait\): 2 of 2 live workers have not restarted.*worker-1 \(host test-host, pid 1001/);

    for (const worker of f.workers) worker.restart();
    await f.heartbeat();
    await f.enqueue(3); // still signed with the old key: workers hold both
    expect(await f.consumeAll()).toEqual({ ok: 3, dead: 0 });
    expect(f.run()).toMatchObject({ action: 'advance', phase: 'activated' });

    await sleep(1100);
    await f.enqueue(2); // the producer has not reloaded: still the old key
    await f.heartbeat();
    const draining = f.run();
    expect(draining).toMatchObject({ outcome: 'blocked', phase: 'activated' });
    expect(draining.message).toMatch(/stem-backlog \(wait\): 2 queued envelopes are still signed with .*a signer has not reloaded/);
    expect(draining.message).toMatch(/stem-workers \(wait\)/);
    // what stem-backlog counted is kept in the ring's state for the next run --once to build on
    const state = JSON.parse(readFileSync(join(f.dir, 'state', 'rings', 'demo.json'), 'utf8')) as { gateProgress?: Record<string, { streams: Record<string, { notable: string }> }> };
    expect(state.gateProgress?.['stem-backlog']?.streams['stem:stream:default']?.notable.split(' ')).toHaveLength(2);

    f.restartProducer();
    for (const worker of f.workers) worker.restart();
    await sleep(300); // stem-signers wants a quiet grace period (200ms) after the last old-key envelope
    await f.heartbeat();
    await f.enqueue(4); // now the new key
    expect(await f.consumeAll()).toEqual({ ok: 6, dead: 0 });
    expect(f.run()).toMatchObject({ action: 'advance', phase: 'stable' });

    // after the drop, restarted workers hold only the new key and the producer signs with it
    for (const worker of f.workers) worker.restart();
    f.restartProducer();
    await f.enqueue(2);
    expect(await f.consumeAll()).toEqual({ ok: 2, dead: 0 });
    expect(await broker.keys('stem:dead:*')).toEqual([]);
  });

  it('never activates while one worker has not restarted', async () => {
    const f = setup();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'added' });
    await sleep(1100); // a restart milliseconds after the write could not be told from clock error
    f.workers[0]!.restart();
    for (let i = 0; i < 3; i += 1) {
      await sleep(600);
      await f.heartbeat();
      const result = f.run();
      expect(result).toMatchObject({ outcome: 'blocked', phase: 'added' });
      expect(result.message).toMatch(/1 of 2 live workers have not restarted.*worker-2/);
    }
  });

  it('never drops while a producer keeps signing with the old key', async () => {
    const f = setup();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'added' });
    await sleep(1100); // a restart milliseconds after the write could not be told from clock error
    for (const worker of f.workers) worker.restart();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'activated' });
    for (const worker of f.workers) worker.restart();
    for (let i = 0; i < 3; i += 1) {
      await sleep(600);
      await f.enqueue(1);
      await f.heartbeat();
      const result = f.run();
      expect(result).toMatchObject({ outcome: 'blocked', phase: 'activated' });
      expect(result.message).toContain('a signer has not reloaded its keys');
      await f.consumeAll();
    }
  });

  it('never drops while a producer signs with the old key even if its envelopes are consumed at once: stem-signers holds it', async () => {
    const f = setup();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'added' });
    await sleep(1100);
    for (const worker of f.workers) worker.restart();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'activated' });
    await sleep(1100);
    for (const worker of f.workers) worker.restart();
    for (let i = 0; i < 2; i += 1) {
      await f.enqueue(2); // the producer was never restarted: still the old key
      expect(await f.consumeAll()).toEqual({ ok: 2, dead: 0 }); // workers hold both keys: nothing queues up
      await f.heartbeat();
      const result = f.run();
      expect(result).toMatchObject({ outcome: 'blocked', phase: 'activated' });
      expect(result.message).toMatch(/stem-signers \(wait\): a signer has not switched to "demo-[^"]+": envelopes enqueued after .* still signed with another key — \d+ on default signed with "demo-/);
      expect(result.message).not.toMatch(/stem-backlog \(wait\)/);
    }
    f.restartProducer();
    await sleep(300); // stem-signers wants a quiet grace period (200ms) after the last old-key envelope
    await f.enqueue(1);
    expect(await f.consumeAll()).toEqual({ ok: 1, dead: 0 });
    await f.heartbeat();
    expect(f.run()).toMatchObject({ action: 'advance', phase: 'stable' });
  });

  it('never activates while workers dead-letter the new key', async () => {
    const f = setup();
    await f.heartbeat();
    expect(f.run()).toMatchObject({ phase: 'added' });
    for (const worker of f.workers) worker.restart();
    // a producer that jumped the gun and signs with the new key while a worker lacks it
    const rogue = loadEnvFile(join(f.dir, 'producers.env'));
    const early = { ...rogue, activeKeyId: [...rogue.signingKeys.keys()][1] as string };
    const stale = new SimulatedWorker(f.fleet, 'worker-stale', join(f.dir, 'producers.env'), 1003);
    await f.fleet.enqueue(early);
    writeFileSync(join(f.dir, 'old.env'), 'STEM_SIGNING_KEYS=placeholder:YWJj\nSTEM_SIGNING_ACTIVE_KEY=placeholder\n');
    stale.config = loadEnvFile(join(f.dir, 'old.env'));
    expect(await stale.consume('default')).toEqual({ ok: 0, dead: 1 });
    await sleep(1100);
    await f.heartbeat();
    const result = f.run();
    expect(result).toMatchObject({ outcome: 'blocked', phase: 'added' });
    expect(result.message).toMatch(/stem-dlq \(wait\): 1 signature-invalid dead letters .*unknown-key key "demo-/);
  });
});

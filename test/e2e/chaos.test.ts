/**
 * Process-level chaos: several real `stem-rotor run --interval` processes share one ring (Redis
 * store; dotenv and an emulated Vault target) while they are SIGKILLed at random and Redis is
 * restarted mid-run. Afterwards every target agrees with the ring, nothing is unparseable, no
 * revoked or dropped key came back, and a last clean pass converges.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signingEnvOf } from '../../src/envfile/codec.js';
import { loadStemSigningConfig, type SigningEnv } from '../../src/stem/signing-env.js';
import { BIN, cliAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { RedisServer, killProcess } from '../helpers/redis-server.js';
import { VaultEmulator } from '../emulators/vault.js';

let redis: RedisServer;
let vault: VaultEmulator;
beforeAll(async () => {
  redis = await new RedisServer(['--appendonly', 'yes', '--appendfsync', 'always']).start();
  vault = await new VaultEmulator().start();
});
afterAll(async () => {
  await redis.stop();
  await vault.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function dotenvKeys(path: string) {
  const env: SigningEnv = {};
  Object.assign(env, signingEnvOf(readFileSync(path), path));
  const config = loadStemSigningConfig(env);
  return { keys: [...config.verificationKeys.keys()].sort(), active: config.activeKeyId };
}

describe('chaos', () => {
  it('orchestrators killed at random and a Redis restart never break the ring', async () => {
    const dir = tempDir('stem-rotor-chaos-');
    expect((await cliAsync(['init', '--dir', dir])).code).toBe(0);
    const seed = readFileSync(join(dir, 'producers.env'), 'utf8');
    const keysLine = /STEM_SIGNING_KEYS=(.*)/.exec(seed)?.[1] as string;
    const active = /STEM_SIGNING_ACTIVE_KEY=(.*)/.exec(seed)?.[1] as string;
    vault.mount('secret');
    vault.put('secret', 'stem/chaos', { STEM_SIGNING_KEYS: keysLine, STEM_SIGNING_ACTIVE_KEY: active, STEM_SIGNING_ALGORITHM: 'hmac-sha256' });
    const config = join(dir, 'stem-rotor.json');
    writeFileSync(
      config,
      JSON.stringify({
        store: { type: 'redis', url: redis.url(0), connectTimeout: '1s', commandTimeout: '2s', leaseTtl: '3s' },
        rings: {
          demo: {
            keyIdPrefix: 'demo-',
            policy: { maxAge: '1ms', propagate: '1s', drain: '1s', autoAdvance: true },
            targets: [
              { name: 'producers', provider: 'dotenv', path: join(dir, 'producers.env') },
              { name: 'workers', provider: 'dotenv', path: join(dir, 'workers.env') },
              { name: 'vault', provider: 'vault-kv2', address: vault.address, mount: 'secret', path: 'stem/chaos' },
            ],
          },
        },
      }),
    );
    const env = { ...process.env, VAULT_TOKEN: 'root-token' };
    const start = () => spawn(process.execPath, [BIN, 'run', '--interval', '1s', '--config', config], { env, stdio: 'ignore' });
    const fleet: ChildProcess[] = [start(), start(), start()];
    const kills: number[] = [];
    let random = 42;
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const deadline = Date.now() + 14_000;
    let restartedRedis = false;
    while (Date.now() < deadline) {
      await sleep(200 + next() * 600);
      const victim = Math.floor(next() * fleet.length);
      await killProcess(fleet[victim] as ChildProcess);
      kills.push(victim);
      fleet[victim] = start();
      if (!restartedRedis && Date.now() > deadline - 7_000) {
        await redis.restart();
        restartedRedis = true;
      }
    }
    await Promise.all(fleet.map((child) => killProcess(child)));
    expect(kills.length).toBeGreaterThan(10);
    expect(restartedRedis).toBe(true);

    // A last, undisturbed orchestrator: resume whatever was interrupted, after the dead leases expire.
    await sleep(1000);
    let final = await cliAsync(['rotate', 'advance', 'demo', '--config', config, '--json'], { env });
    for (let attempt = 0; attempt < 20 && final.code === 4; attempt += 1) {
      await sleep(1000);
      final = await cliAsync(['rotate', 'advance', 'demo', '--config', config, '--json'], { env });
    }
    // the fleet may have finished a whole rotation under the chaos: a stable ring has nothing to advance
    if (final.code === 2) expect(final.stderr).toMatch(/ring "demo" is stable; use rotate start/);
    else expect([0, 3], final.stderr).toContain(final.code);
    const status = JSON.parse((await cliAsync(['status', 'demo', '--config', config, '--json'], { env })).stdout);
    expect(status.transition).toBeNull();
    expect(status.targets.every((target: { inSync: boolean }) => target.inSync)).toBe(true);
    const ring = status.keys.map((key: { id: string }) => key.id).sort();
    for (const file of ['producers.env', 'workers.env']) expect(dotenvKeys(join(dir, file)).keys).toEqual(ring);
    const vaultData = vault.current('secret', 'stem/chaos')?.data as Record<string, string>;
    expect(vaultData.STEM_SIGNING_KEYS?.split(',').map((entry) => entry.split(':')[0]).sort()).toEqual(ring);
    // rotations really happened, and no dropped key ever came back
    const audit = JSON.parse((await cliAsync(['audit', 'demo', '--config', config, '--json'], { env })).stdout) as { details?: { transition?: string; keys?: string[] }; outcome: string }[];
    const drops = audit.filter((event) => event.outcome === 'ok' && event.details?.transition === 'drop');
    expect(drops.length).toBeGreaterThan(0);
    const dropped = new Set<string>();
    let previous: string[] = [];
    for (const event of audit.filter((e) => e.outcome === 'ok' && e.details?.keys)) {
      const keys = (event.details?.keys ?? []).map((entry) => entry.split('=')[0] as string);
      for (const id of keys) expect(dropped.has(id), `key ${id} came back after it was dropped`).toBe(false);
      if (event.details?.transition === 'drop') for (const id of previous) if (!keys.includes(id)) dropped.add(id);
      previous = keys;
    }
  }, 600_000);
});

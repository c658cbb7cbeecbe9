/**
 * `revoke-fanout`: revoking the active key of a ring with 12 targets behind 50 ms of latency each,
 * divided by the same revoke on one target. The revoke writes all targets in parallel, so the goal
 * is ≤ 1.15× one target (SPEC §8).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import createVaultKv2Provider from '../providers/vault-kv2.js';
import { systemClock } from '../src/clock.js';
import { fileStoreDir, parseConfig } from '../src/config/load.js';
import type { RingConfig } from '../src/config/schema.js';
import { RingEngine } from '../src/engine/engine.js';
import { generateKey } from '../src/stem/keys.js';
import { formatKeyList } from '../src/stem/signing-env.js';
import { createFileStore } from '../src/store/file.js';
import { VaultEmulator } from '../test/emulators/vault.js';

let revokes = 0;

async function revokeSeconds(vault: VaultEmulator, targets: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-fanout-'));
  try {
    vault.namespaces.clear();
    // a mount of its own per revoke: each one asks what the mount is, as a `stem-rotor revoke` process does once
    const mount = `secret-${(revokes += 1)}`;
    vault.mount(mount);
    const key = generateKey('hmac-sha256', 'fan-20260101-0001', randomBytes);
    const keys = formatKeyList([{ id: key.id, material: key.secret as Buffer }]);
    for (let i = 0; i < targets; i += 1) vault.put(mount, `stem/t${i}`, { STEM_SIGNING_KEYS: keys, STEM_SIGNING_ACTIVE_KEY: key.id });
    const document = { store: { type: 'file', dir: 'state' }, rings: { fan: { keyIdPrefix: 'fan-', targets: Array.from({ length: targets }, (_, i) => ({ name: `t${i}`, provider: 'vault-kv2', address: vault.address, mount, path: `stem/t${i}` })) } } };
    const config = parseConfig(document, join(dir, 'stem-rotor.json'));
    const ring = config.rings[0] as RingConfig;
    const engine = new RingEngine(ring, {
      store: createFileStore({ dir: fileStoreDir(config), clock: systemClock }),
      clock: systemClock,
      providerFor: async (target) => {
        if (target.provider !== 'vault-kv2') throw new Error('vault only');
        return createVaultKv2Provider({ target: target.name, mount: target.mount, path: target.path, address: vault.address, env: { VAULT_TOKEN: 'root-token' } });
      },
    });
    const started = process.hrtime.bigint();
    await engine.revoke(key.id, { reason: 'bench' });
    return Number(process.hrtime.bigint() - started) / 1e9;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function revokeFanout(): Promise<{ name: string; value: number; unit: string; limit: string; detail: Record<string, number> }[]> {
  const vault = await new VaultEmulator().start();
  try {
    vault.latencyMs = 50;
    await revokeSeconds(vault, 1); // warm up: SDK import, connections
    const one: number[] = [];
    const twelve: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      one.push(await revokeSeconds(vault, 1));
      twelve.push(await revokeSeconds(vault, 12));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
    return [{ name: 'revoke-fanout', value: Number((median(twelve) / median(one)).toFixed(3)), unit: 'x one target', limit: '<= 1.15', detail: { oneTargetMs: Math.round(median(one) * 1000), twelveTargetsMs: Math.round(median(twelve) * 1000) } }];
  } finally {
    await vault.stop();
  }
}

/** The whole CLI on the redis state store: commands finish (connections closed) and share state and audit. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { RedisServer } from '../helpers/redis-server.js';

let server: RedisServer;
beforeAll(async () => {
  server = await new RedisServer(['--requirepass', 'store-pass']).start();
});
afterAll(() => server.stop());

describe('redis state store through the CLI', () => {
  it('rotates with state, lease and audit in Redis; a second orchestrator sees the same state', async () => {
    const dir = tempDir('stem-rotor-redis-store-');
    expect((await cliAsync(['init', '--dir', dir])).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace('  type: file\n  dir: state', `  type: redis\n  url: ${server.url(2)}\n  passwordEnv: STORE_PASSWORD`));
    const env = { STORE_PASSWORD: 'store-pass' };
    const started = await cliAsync(['rotate', 'start', 'demo', '--config', config, '--json'], { env });
    expect(started.code, started.stderr).toBe(0);
    const elsewhere = tempDir('stem-rotor-elsewhere-');
    writeFileSync(join(elsewhere, 'stem-rotor.yaml'), readFileSync(config, 'utf8').replace(/path: (\w+)\.env/g, `path: ${dir}/$1.env`));
    const status = await cliAsync(['status', 'demo', '--config', join(elsewhere, 'stem-rotor.yaml'), '--json'], { env });
    expect(JSON.parse(status.stdout).phase).toBe('added');
    const audit = JSON.parse((await cliAsync(['audit', 'demo', '--config', config, '--json'], { env })).stdout) as { action: string }[];
    expect(audit.map((event) => event.action)).toEqual(['adopt', 'start', 'start']);
    const client = server.client(2, { password: 'store-pass' });
    expect(await client.exists('stem-rotor:ring:{demo}:state', 'stem-rotor:audit')).toBe(2);
    client.disconnect();
    expect((await cliAsync(['status', 'demo', '--config', config], { env: { STORE_PASSWORD: 'wrong' } })).code).toBe(1);
  });
});

describe('run --once over many rings on the redis state store', () => {
  it('reads the states in batches, and a ring whose state is torn fails alone', async () => {
    const dir = tempDir('stem-rotor-redis-rings-');
    const rings: Record<string, unknown> = {};
    for (let i = 0; i < 3; i += 1) {
      writeFileSync(join(dir, `r${i}.env`), `STEM_SIGNING_KEYS=r${i}-20261128-0001:${Buffer.alloc(32, i + 1).toString('base64')}\nSTEM_SIGNING_ACTIVE_KEY=r${i}-20261128-0001\n`);
      rings[`r${i}`] = { keyIdPrefix: `r${i}-`, policy: { maxAge: '3650d' }, targets: [{ name: 'all', provider: 'dotenv', path: `r${i}.env` }] };
    }
    const config = join(dir, 'stem-rotor.json');
    writeFileSync(config, JSON.stringify({ store: { type: 'redis', url: server.url(3), passwordEnv: 'STORE_PASSWORD', prefix: 'many' }, rings }));
    const env = { STORE_PASSWORD: 'store-pass' };
    const first = await cliAsync(['run', '--once', '--config', config, '--json'], { env });
    expect(first.code, first.stderr).toBe(0);
    const client = server.client(3, { password: 'store-pass' });
    await client.hset('many:ring:{r1}:state', 'state', '{"version": 3, "ring": "r1", "keys": [');
    const second = await cliAsync(['run', '--once', '--config', config, '--json'], { env });
    client.disconnect();
    const outcomes = JSON.parse(second.stdout) as { ring: string; outcome: string; message: string }[];
    expect(outcomes.map((o) => [o.ring, o.outcome])).toEqual([
      ['r0', 'noop'],
      ['r1', 'failed'],
      ['r2', 'noop'],
    ]);
    expect(outcomes[1]?.message).toContain('many:ring:{r1}:state');
    expect(second.code).not.toBe(0);
  });
});

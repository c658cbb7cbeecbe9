/** `check` reaches every signal source a ring's gates read. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { RedisServer, freePort } from '../helpers/redis-server.js';

describe('check', () => {
  it('pings both Redis DBs and each Prometheus; an unreachable one fails the check', async () => {
    const server = await new RedisServer().start();
    const dir = tempDir('stem-rotor-check-');
    cli(['init', '--dir', dir]);
    const config = join(dir, 'stem-rotor.yaml');
    const promPort = await freePort();
    writeFileSync(
      config,
      readFileSync(config, 'utf8')
        .replace('    targets:', `    stem:\n      broker:\n        url: ${server.url(0)}\n      backend:\n        url: ${server.url(1)}\n    targets:`)
        .replace('      beforeDrop:\n        - type: soak', `      beforeDrop:\n        - type: soak\n        - type: prometheus\n          url: http://127.0.0.1:${promPort}\n          query: sum(stem_tasks_signature_invalid_total)\n          timeout: 1s`),
    );
    const result = cli(['check', 'demo', '--config', config, '--json']);
    const report = JSON.parse(result.stdout).rings[0];
    expect(report.signals).toEqual([
      expect.objectContaining({ signal: `broker redis ${server.url(0)}`, ok: true, detail: 'PING PONG' }),
      expect.objectContaining({ signal: `backend redis ${server.url(1)}`, ok: true }),
      expect.objectContaining({ signal: expect.stringContaining(`prometheus http://127.0.0.1:${promPort}`), ok: false }),
    ]);
    expect(result.code).toBe(1);
    // a dead letter written by stem_redis 0.1.0: deadAt in the worker's local time, no zone
    const broker = server.client(0);
    await broker.lpush('stem:dead:emails', JSON.stringify({ envelope: { id: 'e', name: 'n', args: {}, headers: {}, enqueuedAt: '2026-01-20T09:15:30.250117', queue: 'emails', meta: {} }, reason: 'signature-invalid', meta: { error: 'signature mismatch' }, deadAt: '2026-01-20T09:15:31.000' }));
    broker.disconnect();
    const zoneLess = JSON.parse(cli(['check', 'demo', '--config', config, '--json']).stdout).rings[0];
    expect(zoneLess.signals[0].detail).toBe("PING PONG; 1 of the newest dead letters have zone-less deadAt (Stem < 0.2): set stem.timezone to the workers' IANA zone");
    await server.stop();
    const down = cli(['check', 'demo', '--config', config]);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/broker redis .*: UNREACHABLE/);
  });
});

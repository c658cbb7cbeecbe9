/**
 * Fail closed, end to end: evidence that cannot be read never lets a phase advance. Through the built
 * CLI, a ring whose activate gates read an unreachable Stem Redis, an unreachable PostgreSQL and an
 * unreachable Prometheus stays in `added` under `rotate advance` and `run --once`, each gate saying
 * `unknown` and why.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

function ringWith(gates: Record<string, unknown>[], stem: Record<string, unknown>): string {
  const dir = tempDir('stem-rotor-failclosed-');
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'ring.json');
  const targets = [{ name: 'producers', provider: 'dotenv', path: 'producers.env' }, { name: 'workers', provider: 'dotenv', path: 'workers.env' }];
  writeFileSync(config, JSON.stringify({ store: { type: 'file', dir: 'state' }, rings: { demo: { algorithm: 'hmac-sha256', policy: { autoAdvance: true }, stem, gates: { beforeActivate: gates, beforeDrop: [{ type: 'soak' }] }, targets } } }));
  expect(cli(['rotate', 'start', 'demo', '--config', config]).code).toBe(0);
  return config;
}

describe('unreadable evidence blocks', () => {
  it.each([
    ['Stem on Redis', [{ type: 'stem-workers' }, { type: 'stem-dlq' }], { broker: { url: 'redis://127.0.0.1:9/0', connectTimeout: '1s' } }, /stem-workers \(unknown\): evidence unavailable: cannot reach Stem's backend Redis/],
    ['Stem on PostgreSQL', [{ type: 'stem-workers' }], { broker: { url: 'postgres://stem@127.0.0.1:9/stem', connectTimeout: '1s' } }, /stem-workers \(unknown\): evidence unavailable: cannot reach Stem's backend PostgreSQL/],
    ['Prometheus', [{ type: 'prometheus', url: 'http://127.0.0.1:9', query: 'sum(stem_tasks_signature_invalid_total)', timeout: '1s' }], { broker: { url: 'redis://127.0.0.1:9/0' } }, /prometheus \(unknown\): /],
  ])('%s unreachable: rotate advance exits 3 and run --once holds, the ring stays added', (_name, gates, stem, reason) => {
    const config = ringWith(gates, stem);
    const advance = cli(['rotate', 'advance', 'demo', '--config', config]);
    expect(advance.code).toBe(3);
    expect(advance.stderr).toMatch(reason);
    const run = cli(['run', '--once', '--json', '--config', config]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)[0]).toMatchObject({ outcome: 'blocked', phase: 'added' });
    expect(JSON.parse(cli(['status', 'demo', '--json', '--config', config]).stdout)).toMatchObject({ phase: 'added' });
  });
});

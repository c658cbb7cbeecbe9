/** The `init` demo ring pointed at a test redis-server as Stem's broker, driven through the built CLI, collecting its secrets for leak scans. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { cli, secretsIn, type CliResult } from './cli.js';
import { tempDir } from './fs.js';
import type { RedisServer } from './redis-server.js';

export interface StemDemo {
  readonly dir: string;
  readonly config: string;
  run(...args: string[]): CliResult;
  /** Every secret the targets have held so far (call after each key change). */
  readonly secrets: Set<string>;
  collect(): void;
}

export function stemDemo(server: RedisServer, prefix: string, edit: (config: string) => string = (config) => config): StemDemo {
  const dir = tempDir(prefix);
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'stem-rotor.yaml');
  writeFileSync(config, edit(readFileSync(config, 'utf8').replace('    targets:', `    stem:\n      broker:\n        url: ${server.url(0)}\n    targets:`)));
  const secrets = new Set<string>();
  const collect = () => ['producers.env', 'workers.env'].forEach((file) => secretsIn(join(dir, file)).forEach((secret) => secrets.add(secret)));
  collect();
  return { dir, config, run: (...args) => cli([...args, '--config', config]), secrets, collect };
}

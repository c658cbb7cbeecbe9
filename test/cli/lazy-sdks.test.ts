/** SDKs load only for rings that use them: `status` of a dotenv-only ring loads no cloud SDK and no Redis client. */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIN, cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

const HOOK = fileURLToPath(new URL('../fixtures/record-modules.mjs', import.meta.url));
/** Text only each SDK's code contains (the CLI is bundled, so files are chunks, not package paths). */
const MARKERS = { 'node-vault': 'X-Vault-Token', '@kubernetes/client-node': 'loadFromCluster', '@aws-sdk/client-secrets-manager': 'secretsmanager', ioredis: 'ReplyError', pg: 'SCRAM-SHA-256' };

/** Every module URL the command loaded (files and node: builtins). */
function loadedModules(args: string[], exitCodes: number[] = [0]): string[] {
  const record = join(tempDir('stem-rotor-modules-'), 'loaded.txt');
  writeFileSync(record, '');
  const result = spawnSync(process.execPath, ['--import', HOOK, BIN, ...args], { env: { ...process.env, RECORD_MODULES_TO: record, VAULT_TOKEN: 'test' }, encoding: 'utf8' });
  expect(exitCodes, result.stderr).toContain(result.status);
  return readFileSync(record, 'utf8').split('\n').filter(Boolean);
}

/** Which of `markers` some loaded file contains. */
function loadedMarkers(urls: readonly string[], markers: Record<string, string>): string[] {
  const sources = urls.filter((url) => url.startsWith('file:')).map((url) => readFileSync(fileURLToPath(url), 'utf8'));
  return Object.entries(markers).filter(([, marker]) => sources.some((source) => source.includes(marker))).map(([name]) => name);
}

function loadedSdks(args: string[], exitCodes: number[] = [0]): string[] {
  const files = loadedModules(args, exitCodes).filter((url) => url.startsWith('file:'));
  expect(files.some((url) => url.endsWith('/bin.js'))).toBe(true);
  const sources = files.map((url) => readFileSync(fileURLToPath(url), 'utf8'));
  // better-sqlite3 is a native addon kept outside the bundle: it shows as its own files
  const external = files.some((url) => url.includes('/node_modules/better-sqlite3/')) ? ['better-sqlite3'] : [];
  return [...Object.entries(MARKERS).filter(([, marker]) => sources.some((source) => source.includes(marker))).map(([sdk]) => sdk), ...external];
}

describe('lazy loading on the paths people wait for', () => {
  it('--version and --help load the command table and nothing else: no config parser, no schema library, no engine', () => {
    for (const flag of ['--version', '--help']) {
      const urls = loadedModules([flag]);
      expect(loadedMarkers(urls, { zod: 'ZodType', yaml: 'YAMLException', 'the engine': 'is younger than maxAge' }), flag).toEqual([]);
      expect(urls.filter((url) => url.startsWith('file:')).length, flag).toBeLessThanOrEqual(6);
    }
  });

  it("status of a dotenv ring with soak gates opens no socket library: the stem-* gates' readers are not loaded", () => {
    const dir = tempDir('stem-rotor-lazy-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    expect(cli(['rotate', 'start', 'demo', '--config', join(dir, 'stem-rotor.yaml')]).code).toBe(0);
    const urls = loadedModules(['status', 'demo', '--config', join(dir, 'stem-rotor.yaml')]);
    expect(urls.filter((url) => ['node:net', 'node:tls', 'node:http', 'node:https'].includes(url))).toEqual([]);
  });
});

describe('lazy SDK loading', () => {
  it('status of a dotenv-only ring loads no cloud SDK and no Redis client', () => {
    const dir = tempDir('stem-rotor-lazy-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    expect(loadedSdks(['status', 'demo', '--config', join(dir, 'stem-rotor.yaml')])).toEqual([]);
  });

  it('the check would notice an SDK: status of a Vault ring loads node-vault (and only it)', () => {
    const dir = tempDir('stem-rotor-lazy-');
    const config = join(dir, 'vault.json');
    writeFileSync(config, JSON.stringify({ rings: { v: { targets: [{ name: 'w', provider: 'vault-kv2', address: 'http://127.0.0.1:9', mount: 'secret', path: 'x' }] } } }));
    // the Vault address is unreachable, so status fails after loading the provider: that is enough here
    expect(loadedSdks(['status', 'v', '--config', config], [0, 1])).toEqual(['node-vault']);
  });

  it('a ring on PostgreSQL loads pg and no Redis client; one on SQLite loads better-sqlite3 and neither', () => {
    const dir = tempDir('stem-rotor-lazy-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const withStem = (url: string) => {
      const config = join(dir, `stem-${url.slice(0, 6)}.json`);
      const targets = [{ name: 'producers', provider: 'dotenv', path: 'producers.env' }, { name: 'workers', provider: 'dotenv', path: 'workers.env' }];
      // no gates listed: with `stem` set, the defaults include every stem-* gate
      writeFileSync(config, JSON.stringify({ store: { type: 'file', dir: 'state' }, rings: { demo: { algorithm: 'hmac-sha256', stem: { broker: { url } }, targets } } }));
      return config;
    };
    // a rotation in progress, so status evaluates the stem-* gates; unreachable or absent, they are unknown after loading the client
    const postgres = withStem('postgres://nobody@127.0.0.1:9/stem');
    expect(cli(['rotate', 'start', 'demo', '--config', postgres]).code).toBe(0);
    expect(loadedSdks(['status', 'demo', '--config', postgres], [0, 1, 3])).toEqual(['pg']);
    expect(loadedSdks(['status', 'demo', '--config', withStem(`sqlite://${join(dir, 'absent.db')}`)], [0, 1, 3])).toEqual(['better-sqlite3']);
  });
});

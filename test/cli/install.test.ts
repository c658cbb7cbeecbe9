/**
 * The install path a newcomer takes: `npm pack` makes a tarball whose only content is the bundled
 * CLI, `npm install -g` of that tarball puts `stem-rotor` on PATH with nothing to fetch but the
 * optional SQLite driver, and the installed bin works end to end — `--file` for env files, since
 * Node itself owns `--env-file`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('install', () => {
  it('npm pack → npm install -g of the tarball → a working stem-rotor on PATH', () => {
    const dir = tempDir('stem-rotor-install-');
    // the suite's own build is in dist/ already; --ignore-scripts keeps pack from building it again
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe' });
    const tarball = readdirSync(dir).find((file) => file.endsWith('.tgz'));
    expect(tarball).toMatch(/^stem-rotor-\d+\.\d+\.\d+\.tgz$/);
    const listed = execFileSync('tar', ['-tzf', join(dir, tarball as string)], { encoding: 'utf8' }).split('\n');
    expect(listed).toContain('package/dist/src/cli/bin.js');
    expect(listed.filter((file) => file.startsWith('package/src/') || file.startsWith('package/test/'))).toEqual([]);

    const prefix = join(dir, 'prefix');
    // --ignore-scripts: the optional SQLite driver's native build (or prebuilt download) is npm ci's
    // business in CI; what is tested here is that nothing else needs installing
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball as string)], { stdio: 'pipe' });
    expect(readdirSync(join(prefix, 'lib', 'node_modules'))).toEqual(['stem-rotor']);
    // the only runtime dependency is the optional SQLite driver (and its own); everything else is bundled
    const modules = readdirSync(join(prefix, 'lib', 'node_modules', 'stem-rotor', 'node_modules'));
    expect(modules).toContain('better-sqlite3');
    expect(modules.filter((name) => ['zod', 'ioredis', 'pino', 'yaml', 'commander', '@aws-sdk', '@kubernetes', 'node-vault', 'pg', 'prom-client'].includes(name))).toEqual([]);

    const env = cliEnv({ PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, HOME: dir });
    const run = (...args: string[]) => spawnSync('stem-rotor', args, { cwd: dir, env, encoding: 'utf8' });
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    expect(run('--version').stdout.trim()).toBe(version);
    expect(run('init', '--dir', 'demo').status).toBe(0);
    const check = run('check', '--config', 'demo/stem-rotor.yaml');
    expect(check.status, check.stderr).toBe(0);
    expect(run('rotate', 'start', 'demo', '--config', 'demo/stem-rotor.yaml').status).toBe(0);
    writeFileSync(join(dir, 'bad.env'), 'STEM_SIGNING_KEYS=k1:not-base64!\nSTEM_SIGNING_ACTIVE_KEY=k1\n');
    const lint = run('lint', '--file', 'bad.env');
    expect(lint.status).toBe(1);
    expect(lint.stdout).toContain('STEM_SIGNING_KEYS');
    const eaten = run('lint', '--env-file', 'nope.env'); // Node's own flag: refused by stem-rotor, not by node
    expect(eaten.stderr).not.toContain('node:');
    expect(eaten.status).toBe(2);
  });
});

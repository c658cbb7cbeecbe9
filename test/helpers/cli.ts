/** Runs the built CLI as a user would, and keeps every output for the secret-leak scan. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signingEnvOf } from '../../src/envfile/codec.js';
import { decodeDartBase64 } from '../../src/stem/base64.js';

export const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const outputs: string[] = [];

/** Every directory above `path` lets anyone through, and anyone may read the file. */
function reachableByAnyone(path: string): boolean {
  if ((statSync(path).mode & 0o004) === 0) return false;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

let unprivileged: { node: string; bin: string } | undefined;

/**
 * Node and the built CLI where an unprivileged uid can run them: the checkout (CI's clean clone,
 * the Node 24/26 binaries) may sit in a 0700 directory, so they are copied below the suite's
 * world-readable temp root when needed.
 */
function unprivilegedCommand(): { node: string; bin: string } {
  if (unprivileged) return unprivileged;
  const root = mkdtempSync(join(tmpdir(), 'stem-rotor-public-'));
  chmodSync(root, 0o755);
  let bin = BIN;
  if (!reachableByAnyone(BIN)) {
    cpSync(dirname(dirname(dirname(BIN))), join(root, 'dist'), { recursive: true });
    bin = join(root, 'dist', 'src', 'cli', 'bin.js');
  }
  let node = process.execPath;
  if (!reachableByAnyone(node)) {
    node = join(root, 'node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
  }
  execFileSync('chmod', ['-R', 'a+rX', root]);
  unprivileged = { node, bin };
  return unprivileged;
}

/**
 * A spawned CLI's environment: a user's minimal one, plus the suite's temp root (so what Node keeps
 * in the temp directory — its compile cache on Node >= 22 — goes with the suite's temp root).
 */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}), ...extra };
}

/** `runAs`: run as that uid (and gid) without supplementary groups, as an unprivileged service user would. */
export function cli(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; input?: string; runAs?: number } = {}): CliResult {
  const as = options.runAs === undefined ? null : unprivilegedCommand();
  const command = as === null ? [process.execPath, BIN, ...args] : ['setpriv', `--reuid=${options.runAs}`, `--regid=${options.runAs}`, '--clear-groups', as.node, as.bin, ...args];
  const result = spawnSync(command[0] as string, command.slice(1), {
    cwd: options.cwd,
    env: cliEnv(options.env),
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 30_000,
  });
  const out = { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  outputs.push(out.stdout, out.stderr);
  return out;
}

/** The same, without blocking the event loop: for tests whose emulators run in this process. */
export function cliAsync(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      outputs.push(stdout, stderr);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Every secret (HMAC secret, Ed25519 seed) in a dotenv file, in every encoding it could leak in. */
export function secretsIn(path: string): string[] {
  const env = signingEnvOf(readFileSync(path), path);
  const forms: string[] = [];
  for (const name of ['STEM_SIGNING_KEYS', 'STEM_SIGNING_PRIVATE_KEYS'] as const) {
    const value = env[name];
    if (!value) continue;
    for (const entry of value.split(',')) {
      const encoded = entry.split(':')[1];
      if (!encoded) continue;
      const bytes = decodeDartBase64(encoded);
      forms.push(bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('base64').slice(0, 24));
    }
  }
  return forms;
}

export function findLeaks(secrets: Iterable<string>, texts: Iterable<string>): string[] {
  const all = [...texts];
  return [...new Set(secrets)].filter((secret) => all.some((text) => text.includes(secret)));
}

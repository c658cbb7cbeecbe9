/**
 * Delivering JSON to something the operator named: a command of their own (no shell; the JSON on
 * stdin) or an HTTP(S) endpoint (POST). Shared by restart hooks and notification sinks. Messages name
 * the command, or only the URL's origin (its path and query may carry a token).
 */
import { spawn } from 'node:child_process';
import { formatDuration } from '../duration.js';
import { RotorError } from '../errors.js';

export function runWithStdin(argv: readonly string[], input: string, options: { readonly timeoutMs: number; readonly env?: Readonly<Record<string, string>>; readonly what: string }): Promise<void> {
  const [command, ...args] = argv as [string, ...string[]];
  const shown = `${options.what} \`${argv.join(' ')}\``;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'], timeout: options.timeoutMs, env: { ...process.env, ...options.env } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = `${stderr}${chunk.toString('utf8')}`.slice(-2000)));
    child.stdin.on('error', () => undefined); // a command that ignores its stdin may close it first
    child.stdin.end(input);
    child.on('error', (error: NodeJS.ErrnoException) => reject(new RotorError(`${shown}: ${error.code === 'ENOENT' ? 'command not found' : error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const last = stderr.trim().split('\n').at(-1) ?? '';
      const how = signal === 'SIGTERM' && code === null ? `did not finish within ${formatDuration(options.timeoutMs)}` : code === null ? `was killed by ${signal}` : `exited ${code}`;
      reject(new RotorError(`${shown} ${how}${last ? `: ${last}` : ''}`));
    });
  });
}

export async function postJson(url: string, body: string, options: { readonly timeoutMs: number; readonly headers?: Readonly<Record<string, string>>; readonly what: string }): Promise<void> {
  const where = `${options.what} ${new URL(url).origin}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'stem-rotor', ...options.headers }, body, signal: AbortSignal.timeout(options.timeoutMs) });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    throw new RotorError(`${where}: ${(error as Error).name === 'TimeoutError' ? `no answer within ${formatDuration(options.timeoutMs)}` : (cause?.message ?? (error as Error).message)}`);
  }
  await response.body?.cancel();
  if (!response.ok) throw new RotorError(`${where}: HTTP ${response.status}`);
}

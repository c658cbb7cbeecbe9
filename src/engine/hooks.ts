/**
 * A target's restart hooks, run as part of its after-write step: a command of the user's own
 * (no shell; the event as JSON on stdin) or a webhook (the event POSTed as JSON). The event names
 * the ring, target, transition and key ids — never key material.
 */
import { spawn } from 'node:child_process';
import type { RestartHook } from '../config/schema.js';
import { formatDuration } from '../duration.js';
import { RotorError } from '../errors.js';

export interface HookEvent {
  readonly ring: string;
  readonly target: string;
  readonly transition: string;
  readonly transitionId: string;
  readonly keyIds: readonly string[];
  readonly activeKeyId: string;
}

function runCommand(argv: readonly string[], timeoutMs: number, event: HookEvent): Promise<void> {
  const [command, ...args] = argv as [string, ...string[]];
  const shown = argv.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout: timeoutMs,
      env: { ...process.env, STEM_ROTOR_RING: event.ring, STEM_ROTOR_TARGET: event.target, STEM_ROTOR_TRANSITION: event.transition },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = `${stderr}${chunk.toString('utf8')}`.slice(-2000)));
    child.stdin.on('error', () => undefined); // a hook that ignores its stdin may close it first
    child.stdin.end(`${JSON.stringify(event)}\n`);
    child.on('error', (error: NodeJS.ErrnoException) => reject(new RotorError(`restart hook \`${shown}\`: ${error.code === 'ENOENT' ? 'command not found' : error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const last = stderr.trim().split('\n').at(-1) ?? '';
      const how = signal === 'SIGTERM' && code === null ? `did not finish within ${formatDuration(timeoutMs)}` : code === null ? `was killed by ${signal}` : `exited ${code}`;
      reject(new RotorError(`restart hook \`${shown}\` ${how}${last ? `: ${last}` : ''}`));
    });
  });
}

async function callWebhook(url: string, timeoutMs: number, event: HookEvent): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'stem-rotor' }, body: JSON.stringify(event), signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    throw new RotorError(`restart webhook ${new URL(url).origin}: ${(error as Error).name === 'TimeoutError' ? `no answer within ${formatDuration(timeoutMs)}` : (cause?.message ?? (error as Error).message)}`);
  }
  await response.body?.cancel();
  if (!response.ok) throw new RotorError(`restart webhook ${new URL(url).origin}: HTTP ${response.status}`);
}

/** Runs every hook in order; the first failure stops the rest (the step is retried whole). */
export async function runRestartHooks(hooks: readonly RestartHook[], event: HookEvent): Promise<void> {
  for (const hook of hooks) {
    if ('exec' in hook) await runCommand(hook.exec, hook.timeout, event);
    else await callWebhook(hook.webhook, hook.timeout, event);
  }
}

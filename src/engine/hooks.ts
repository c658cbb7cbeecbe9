/**
 * A target's restart hooks, run as part of its after-write step: a command of the user's own
 * (no shell; the event as JSON on stdin) or a webhook (the event POSTed as JSON). The event names
 * the ring, target, transition and key ids — never key material.
 */
import type { RestartHook } from '../config/schema.js';
import { postJson, runWithStdin } from '../notify/transport.js';

export interface HookEvent {
  readonly ring: string;
  readonly target: string;
  readonly transition: string;
  readonly transitionId: string;
  readonly keyIds: readonly string[];
  readonly activeKeyId: string;
}

/** Runs every hook in order; the first failure stops the rest (the step is retried whole). */
export async function runRestartHooks(hooks: readonly RestartHook[], event: HookEvent): Promise<void> {
  for (const hook of hooks) {
    const body = `${JSON.stringify(event)}\n`;
    if ('exec' in hook) await runWithStdin(hook.exec, body, { timeoutMs: hook.timeout, what: 'restart hook', env: { STEM_ROTOR_RING: event.ring, STEM_ROTOR_TARGET: event.target, STEM_ROTOR_TRANSITION: event.transition } });
    else await postJson(hook.webhook, body, { timeoutMs: hook.timeout, what: 'restart webhook' });
  }
}

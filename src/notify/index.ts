/**
 * Notifications: each sink gets the events it asked for, with bounded retries and backoff. A sink
 * that still fails never fails or holds up the rotation: the failure is returned (the engine audits
 * it), logged by the caller and counted for `/metrics`.
 */
import { randomBytes } from 'node:crypto';
import type { NotifySink } from '../config/schema.js';
import type { RingNotice } from '../core/events.js';
import { importLib } from '../import-lib.js';
import { postJson, runWithStdin } from './transport.js';

export interface NotifyFailure {
  readonly sink: string;
  readonly error: string;
}

export type Notify = (notice: RingNotice) => Promise<readonly NotifyFailure[]>;

/** Failed deliveries (after retries) per sink since the process started, for `/metrics`. */
const failures = new Map<string, number>();
export function notificationFailures(): ReadonlyMap<string, number> {
  return failures;
}

/** The event as every sink but Slack gets it: Standard Webhooks' `type`, `timestamp`, `data`. */
export function payloadOf(notice: RingNotice, now: Date): string {
  const { kind, ring, message, details, type } = notice;
  return JSON.stringify({ type: `stem-rotor.${kind}`, timestamp: now.toISOString(), data: { ring, kind, severity: type === 'Warning' ? 'warning' : 'info', message, ...details } });
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function deliver(sink: NotifySink & { readonly name: string }, notice: RingNotice, now: Date): Promise<void> {
  const payload = payloadOf(notice, now);
  switch (sink.type) {
    case 'webhook': {
      const { Webhook } = await importLib<typeof import('standardwebhooks')>('standardwebhooks', () => import('standardwebhooks'), 'Webhook');
      const id = `msg_${randomBytes(12).toString('hex')}`;
      const signature = new Webhook(requireEnv(sink.secretEnv)).sign(id, now, payload);
      return postJson(sink.url, payload, { timeoutMs: sink.timeout, what: `notification ${sink.name}`, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature } });
    }
    case 'slack': {
      const icon = notice.type === 'Warning' ? ':warning:' : ':key:';
      return postJson(requireEnv(sink.urlEnv), JSON.stringify({ text: `${icon} *stem-rotor* ${notice.message}` }), { timeoutMs: sink.timeout, what: `notification ${sink.name}` });
    }
    case 'exec':
      return runWithStdin(sink.command, `${payload}\n`, { timeoutMs: sink.timeout, what: `notification ${sink.name}`, env: { STEM_ROTOR_RING: notice.ring, STEM_ROTOR_EVENT: notice.kind } });
  }
}

const ATTEMPTS = 3;

export function createNotifier(sinks: readonly (NotifySink & { readonly name: string })[], options: { readonly sleep?: (ms: number) => Promise<void>; readonly now?: () => Date } = {}): Notify {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  return async (notice) => {
    const wanted = sinks.filter((sink) => (!sink.events || sink.events.includes(notice.kind)) && (!sink.rings || sink.rings.includes(notice.ring)));
    const outcomes = await Promise.all(
      wanted.map(async (sink): Promise<NotifyFailure | null> => {
        for (let attempt = 1; ; attempt += 1) {
          try {
            await deliver(sink, notice, (options.now ?? (() => new Date()))());
            return null;
          } catch (error) {
            if (attempt >= ATTEMPTS) {
              failures.set(sink.name, (failures.get(sink.name) ?? 0) + 1);
              return { sink: sink.name, error: (error as Error).message };
            }
            await sleep(200 * 2 ** attempt);
          }
        }
      }),
    );
    return outcomes.filter((outcome): outcome is NotifyFailure => outcome !== null);
  };
}

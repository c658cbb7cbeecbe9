/**
 * The persisted ring state, checked on every load (file and Redis stores): a state that does not
 * match is never taken as "no state" nor used half-read — the command stops (exit 2) naming where
 * it came from and the field.
 */
import * as z from 'zod';
import { ConfigError } from '../errors.js';
import { ALGORITHMS } from '../stem/signing-env.js';
import type { RingState } from './types.js';

const time = z.string().refine((text) => !Number.isNaN(Date.parse(text)), 'an ISO time');
const keySet = z.object({ keyIds: z.array(z.string().min(1)).min(1), activeKeyId: z.string().min(1) });
const gateResult = z.object({
  name: z.string(),
  verdict: z.enum(['pass', 'wait', 'unknown']),
  reason: z.string(),
  overridden: z.object({ reason: z.string(), by: z.string() }).optional(),
});
const writeRecord = z.object({
  target: z.string(),
  status: z.enum(['pending', 'writing', 'verified', 'unchanged', 'failed']),
  version: z.string().optional(),
  fingerprints: z.array(z.string()).optional(),
  writtenAt: time.optional(),
  verifiedAt: time.optional(),
  error: z.string().optional(),
  afterWrite: z.enum(['pending', 'done']).optional(),
});

const actor = z.object({ user: z.string(), host: z.string() });

const transitionCommon = {
  id: z.string(),
  from: keySet,
  desired: keySet,
  tolerated: z.array(z.string()),
  parallel: z.boolean(),
  startedAt: time,
  gates: z.array(gateResult),
  writes: z.record(z.string(), writeRecord),
  reason: z.string().optional(),
  by: actor.optional(),
};

const ringStateSchema = z.object({
  schema: z.literal(1),
  ring: z.string().min(1),
  algorithm: z.enum(ALGORITHMS),
  keys: z.array(z.object({ id: z.string().min(1), fingerprint: z.string(), createdAt: time })).min(1),
  activeKeyId: z.string().min(1),
  revokedKeyIds: z.array(z.string()),
  rotation: z
    .object({
      id: z.string(),
      oldKeyId: z.string(),
      newKeyId: z.string(),
      phase: z.enum(['added', 'activated', 'rolling-back']),
      /** stem-rotor 0.1 wrote a rollback as phase `added` with `aborting: true`. */
      aborting: z.boolean().optional(),
      /** Written before 0.2; now derived from the phase and the transition in flight. */
      activateGatesPassed: z.boolean().optional(),
      startedAt: time,
      phaseVerifiedAt: time,
      phaseStartedAt: time.optional(),
      startedBy: actor.optional(),
    })
    .transform(({ aborting, activateGatesPassed: _derived, ...rotation }) => (aborting ? { ...rotation, phase: 'rolling-back' as const } : rotation))
    .nullable(),
  transition: z
    .discriminatedUnion('kind', [
      z.object({ ...transitionCommon, kind: z.literal('start'), generatedKeyId: z.string(), rotationId: z.string(), revokedKeyId: z.null() }),
      z.object({ ...transitionCommon, kind: z.enum(['activate', 'drop', 'abort', 'rollback']), generatedKeyId: z.null(), rotationId: z.string(), revokedKeyId: z.null() }),
      z.object({ ...transitionCommon, kind: z.literal('revoke'), generatedKeyId: z.string().nullable(), rotationId: z.string().nullable(), revokedKeyId: z.string() }),
    ])
    .nullable(),
  updatedAt: time,
  lastBlock: z.string().optional(),
  approval: z
    .object({ by: actor, at: time, reason: z.string(), step: z.enum(['activate', 'drop', 'abort', 'rollback']), subject: z.string() })
    .optional(),
  gateProgress: z.record(z.string(), z.unknown()).optional(),
});

function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`)).join('').replace(/^\./, '') || '(top level)';
}

/**
 * Parses stored state text. `where` names the file or Redis key. Anything but a valid state of
 * this ring is exit 2; nothing is written.
 */
export function parseStoredState(text: string, where: string, ring: string): RingState {
  const advice = 'restore it from a backup (the audit trail records every key set), or move it aside to re-adopt the targets';
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new ConfigError(`state ${where} is corrupt (not JSON); ${advice}`);
  }
  const parsed = ringStateSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    throw new ConfigError(`state ${where} is invalid at ${fieldPath(issue.path)}: ${issue.message}; ${advice}`);
  }
  const state: RingState = parsed.data;
  if (state.ring !== ring) throw new ConfigError(`state ${where} belongs to ring "${state.ring}", not "${ring}"; ${advice}`);
  if (!state.keys.some((key) => key.id === state.activeKeyId)) throw new ConfigError(`state ${where} is invalid at activeKeyId: not one of its keys; ${advice}`);
  return state;
}

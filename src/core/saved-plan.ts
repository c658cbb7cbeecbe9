/**
 * A saved plan, like Terraform's: what `rotate … --dry-run --out plan.json` decided — the transition
 * with its ids (the new key id is fixed here; its material is generated when applied), per-target
 * field changes, the gate verdicts it rested on, the logical version of the ring's state and a hash
 * of every target's content — and `--plan plan.json` applies exactly that or refuses, naming what
 * changed. Never key material: ids, fingerprints and hashes only.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { GateResult, ObservedTarget, RingState, Transition } from './types.js';

export const PLAN_FORMAT = 'stem-rotor-plan/1';

/** Built on first use: only `--plan` reads a plan file, and status need not pay for the schema. */
function buildPlanSchema() {
  const keySetSchema = z.strictObject({ keyIds: z.array(z.string()).readonly(), activeKeyId: z.string() });
  const sideSchema = z.strictObject({ keyIds: z.array(z.string()).readonly(), activeKeyId: z.string().nullable() });

  return z.strictObject({
    format: z.literal(PLAN_FORMAT),
    ring: z.string(),
    action: z.enum(['start', 'advance', 'abort']),
    createdAt: z.string(),
    /** The ring's state the plan was made on (its logical content, not its timestamps). */
    stateVersion: z.string(),
    transition: z.strictObject({
      id: z.string(),
      kind: z.string(),
      rotationId: z.string().nullable(),
      from: keySetSchema,
      desired: keySetSchema,
      /** The key the apply generates material for, under exactly this id. */
      generatedKeyId: z.string().nullable(),
    }),
    targets: z.array(
      z.strictObject({
        name: z.string(),
        location: z.string(),
        /** SHA-256 over what the target holds (key ids, fingerprints, active key); any change since refuses the plan. */
        contentHash: z.string(),
        fields: z.array(z.string()).readonly(),
        before: sideSchema,
        after: sideSchema,
      }),
    ),
    gates: z.array(z.strictObject({ name: z.string(), verdict: z.enum(['pass', 'wait', 'unknown']), reason: z.string(), overridden: z.strictObject({ reason: z.string(), by: z.string() }).optional() })),
    approved: z.boolean(),
    reason: z.string().optional(),
    /** SHA-256 of everything above: a plan edited by hand is refused. */
    hash: z.string(),
  });
}

let planSchema: ReturnType<typeof buildPlanSchema> | undefined;

export type SavedPlan = z.infer<ReturnType<typeof buildPlanSchema>>;
export type PlanTarget = SavedPlan['targets'][number];

/** JSON with object keys sorted, so equal content hashes equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A domain-separated hash of a JSON value with sorted keys. */
export function sha256(domain: string, value: unknown): string {
  return createHash('sha256').update(`${domain}\n${canonical(value)}`).digest('hex');
}

/**
 * The state's logical content: keys, active key, revocations, rotation and transition progress —
 * not timestamps, nor what incremental gates read (a dry run evaluates them too).
 */
export function stateVersion(state: RingState): string {
  const rotation = state.rotation && { id: state.rotation.id, phase: state.rotation.phase, oldKeyId: state.rotation.oldKeyId, newKeyId: state.rotation.newKeyId };
  const transition = state.transition && { id: state.transition.id, kind: state.transition.kind, desired: state.transition.desired, writes: Object.values(state.transition.writes).map((write) => [write.target, write.status, write.afterWrite ?? null]) };
  return sha256('state', { keys: state.keys.map((key) => [key.id, key.fingerprint]), activeKeyId: state.activeKeyId, revoked: state.revokedKeyIds, rotation, transition });
}

/**
 * What a target holds, as the core sees it: key ids with their fingerprints, which have secrets, the
 * active key and the algorithm field. Never the raw values: a hash of a weak secret could be guessed
 * offline, a fingerprint is no more than the state store already keeps.
 */
export function contentHash(observed: ObservedTarget, algorithmField: string | undefined): string {
  return sha256('target-content', { keys: observed.keys.map((key) => [key.id, key.fingerprint, key.hasSecret]), active: observed.activeKeyId, algorithm: algorithmField ?? null });
}

export function sealPlan(plan: Omit<SavedPlan, 'hash' | 'format'>): SavedPlan {
  const body = { format: PLAN_FORMAT, ...plan } as const;
  return { ...body, hash: sha256('plan', body) };
}

/** Parses a plan file's text; an edited or foreign file is refused with why. */
export function openPlan(text: string): SavedPlan | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  const parsed = (planSchema ??= buildPlanSchema()).safeParse(value, { jitless: true });
  if (!parsed.success) return `not a ${PLAN_FORMAT} plan (${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).slice(0, 3).join('; ')})`;
  const { hash, ...body } = parsed.data;
  if (sha256('plan', body) !== hash) return 'its content does not match its hash: the plan was edited after it was written';
  return parsed.data;
}

export interface PlanSituation {
  readonly ring: string;
  readonly action: string;
  readonly stateVersion: string;
  readonly targets: readonly { readonly name: string; readonly contentHash: string }[];
}

/** What changed since the plan was made (empty: it may be applied). Checked before any gate is read. */
export function situationChanges(plan: SavedPlan, now: PlanSituation): string[] {
  const changes: string[] = [];
  if (plan.ring !== now.ring) changes.push(`the plan is for ring "${plan.ring}", not "${now.ring}"`);
  if (plan.action !== now.action) changes.push(`the plan is for rotate ${plan.action}, not rotate ${now.action}`);
  if (plan.stateVersion !== now.stateVersion) changes.push("the ring's state changed since the plan was made (another command ran)");
  const current = new Map(now.targets.map((target) => [target.name, target.contentHash]));
  for (const target of plan.targets) {
    const hash = current.get(target.name);
    if (hash === undefined) changes.push(`target "${target.name}" is no longer in the ring`);
    else if (hash !== target.contentHash) changes.push(`target "${target.name}" (${target.location}) changed since the plan was made`);
  }
  for (const name of current.keys()) if (!plan.targets.some((target) => target.name === name)) changes.push(`target "${name}" was added to the ring since the plan was made`);
  return changes;
}

/** What differs between the planned transition and the one the apply arrived at, its gates passing (empty: the same). */
export function transitionChanges(plan: SavedPlan, transition: Transition, gates: readonly GateResult[]): string[] {
  const changes: string[] = [];
  const planned = plan.transition;
  if (planned.kind !== transition.kind) changes.push(`the step is now ${transition.kind}, the plan says ${planned.kind}`);
  if (canonical(planned.desired) !== canonical(transition.desired)) changes.push(`the desired key set is now ${transition.desired.keyIds.join(',')} (active ${transition.desired.activeKeyId}); the plan says ${planned.desired.keyIds.join(',')} (active ${planned.desired.activeKeyId})`);
  if (canonical(planned.from) !== canonical(transition.from)) changes.push('the key set the step starts from differs from the plan');
  for (const gate of gates) if (!plan.gates.some((saved) => saved.name === gate.name)) changes.push(`gate ${gate.name} was not in the plan`);
  return changes;
}

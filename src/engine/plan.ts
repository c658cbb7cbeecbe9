/**
 * Preparing a step and rendering it: the gates of the next step (with overrides), the ids its
 * transition gets (fresh, or a saved plan's), the checks a saved plan must pass, and the dry-run
 * result with the plan `--out` saves.
 */
import type { Plan } from '../core/plan.js';
import type { InFlight, RingState } from '../core/types.js';
import { changedVariables } from '../core/keyset.js';
import { recordApproval } from '../core/approval.js';
import { nextGateSlot, nextStepSlot, withGateProgress } from '../core/machine.js';
import { contentHash, sealPlan, situationChanges, stateVersion, type SavedPlan } from '../core/saved-plan.js';
import { ConfigError, GateBlockedError, PlanChangedError } from '../errors.js';
import { evaluateGates, gateNamesBefore, gatesBefore, type GateResult } from '../gates/index.js';
import { STEM_ENV } from '../stem/signing-env.js';
import type { RingSession } from './session.js';
import { fieldName, writeOrder, type TargetRead } from './targets.js';
import type { Override, PlannedWrite, StepIds, StepOptions, StepResult } from './types.js';

/**
 * The gates of the next step, and the state with what incremental gates read (null: nothing new).
 * None while a transition is in flight: finishing it needs no new verdict.
 */
export async function evaluateStepGates(session: RingSession, state: RingState, options: StepOptions): Promise<{ gates: GateResult[]; progressed: RingState | null }> {
  const slot = nextStepSlot(state);
  if (!slot) return { gates: [], progressed: null };
  const toEvaluate = await gatesBefore(session.ring, slot);
  // a stable ring without windows has no gate before its start: open no Stem connection for it
  const stem = session.ring.stem && toEvaluate.length > 0 ? new (await import('../stem/sources.js')).StemSources(session.ring.stem) : null;
  let results: GateResult[];
  try {
    results = toEvaluate.length === 0 ? [] : await evaluateGates(toEvaluate, { ring: session.ring, state, slot, now: session.deps.clock.now(), stem, restarts: () => session.restartStatus() });
  } finally {
    await stem?.close();
  }
  const overrides = options.overrides ?? [];
  assertOverridesKnown(session, state, overrides);
  const gates = results.map(({ carry: _carry, ...result }) => {
    const override = overrides.find((candidate) => candidate.gate === result.name);
    return override && result.verdict !== 'pass' ? { ...result, overridden: { reason: override.reason, by: `${session.actor.user}@${session.actor.host}` } } : result;
  });
  return { gates, progressed: withGateProgress(state, results.map((result) => result.carry)) };
}

/**
 * `--approve`: the state with this actor's approval of the next step recorded, when an approval gate
 * guards it; else null (the flag is then a no-op, as it always was).
 */
export function withOperatorApproval(session: RingSession, state: RingState, options: StepOptions): RingState | null {
  const slot = nextGateSlot(state);
  if (!options.approve || state.transition || !slot || !session.ring.gates[slot].some((gate) => gate.type === 'approval')) return null;
  return recordApproval(state, session.actor, options.reason ?? 'rotate advance --approve', session.now());
}

/** An --override must name a gate of the next step; checked before the lease, so a typo changes nothing. */
export function assertOverridesKnown(session: RingSession, state: RingState, overrides: readonly Override[]): void {
  const slot = nextStepSlot(state);
  const names = slot ? gateNamesBefore(session.ring, slot) : [];
  for (const override of overrides) {
    if (!names.includes(override.gate)) {
      throw new ConfigError(`--override ${override.gate}: no such gate before the next step of ring "${session.ring.name}" (gates: ${names.join(', ') || 'none'})`);
    }
  }
}

/** A saved plan's ids, so the apply writes exactly the key id the plan showed; else fresh ones. */
export function stepIds(session: RingSession, state: RingState, plan: SavedPlan | undefined): StepIds {
  if (plan) return { transitionId: plan.transition.id, rotationId: plan.transition.rotationId ?? session.id('rot'), newKeyId: () => plan.transition.generatedKeyId ?? session.freshKeyId(state) };
  return { transitionId: session.id('t'), rotationId: session.id('rot'), newKeyId: () => session.freshKeyId(state) };
}

/** A target's content hash for a plan: what it holds, never its raw values. */
function targetHash(read: TargetRead): string {
  return contentHash(read.observed, read.snapshot.fields[fieldName(read.handle.config, STEM_ENV.algorithm)]);
}

/** Refuses a saved plan the ring, its state or its targets no longer match. */
export function assertPlanSituation(session: RingSession, plan: SavedPlan | undefined, action: string, state: RingState, reads: readonly TargetRead[]): void {
  if (!plan) return;
  const changes = situationChanges(plan, { ring: session.ring.name, action, stateVersion: stateVersion(state), targets: reads.map((read) => ({ name: read.handle.config.name, contentHash: targetHash(read) })) });
  if (changes.length > 0) throw planChanged(session, action, changes);
}

export function planChanged(session: RingSession, action: string, changes: readonly string[]): PlanChangedError {
  return new PlanChangedError(`the saved plan no longer applies; nothing was written:\n  - ${changes.join('\n  - ')}\nnext: make a new plan with \`stem-rotor rotate ${action} ${session.ring.name} --dry-run --out plan.json\`, review it, then apply it with --plan plan.json`);
}

/** A dry run's result: the core's plan made on `before`, rendered; a transition comes with the plan `--out` saves. */
export function renderPlan(session: RingSession, action: string, before: RingState, decided: Plan, reads: readonly TargetRead[], gates: readonly GateResult[], options: StepOptions): StepResult {
  switch (decided.kind) {
    case 'blocked':
      throw blocked(session.ring.name, action, decided.gates);
    case 'discard':
      return session.result(action, 'planned', decided.state, null, [], [], `dry run: abort would discard the ${decided.discarded.kind} that has written nothing; nothing was written`);
    case 'resume':
      return describeTransition(session, action, before, decided.state, reads, [], options);
    case 'transition':
      return describeTransition(session, action, before, decided.state, reads, gates, options);
  }
}

function describeTransition(session: RingSession, action: string, before: RingState, planned: InFlight, reads: readonly TargetRead[], gates: readonly GateResult[], options: StepOptions): StepResult {
  const { transition } = planned;
  const ordered = writeOrder(reads.map((read) => read.handle)).map((handle) => reads.find((r) => r.handle === handle) as TargetRead);
  const writes: PlannedWrite[] = ordered.map((read) => {
    const config = read.handle.config;
    const after = { keyIds: transition.desired.keyIds, activeKeyId: config.audience === 'verifiers' ? null : transition.desired.activeKeyId };
    const variables = changedVariables(session.ring.algorithm, read.observed, transition.desired, read.snapshot.fields[fieldName(config, STEM_ENV.algorithm)]);
    const fields = variables.map((variable) => fieldName(config, variable));
    const beforeSet = { keyIds: read.observed.keys.map((key) => key.id), activeKeyId: read.observed.activeKeyId };
    return { target: config.name, audience: config.audience, location: read.handle.provider.location, fields, before: beforeSet, after, change: fields.length > 0 };
  });
  const plan = sealPlan({
    ring: session.ring.name,
    action: action as SavedPlan['action'],
    createdAt: session.now(),
    stateVersion: stateVersion(before),
    transition: { id: transition.id, kind: transition.kind, rotationId: transition.rotationId, from: transition.from, desired: transition.desired, generatedKeyId: transition.generatedKeyId },
    targets: ordered.map((read, index) => {
      const write = writes[index] as PlannedWrite;
      return { name: write.target, location: write.location, contentHash: targetHash(read), fields: [...write.fields], before: write.before, after: write.after };
    }),
    gates: gates.map((gate) => ({ name: gate.name, verdict: gate.verdict, reason: gate.reason, ...(gate.overridden ? { overridden: gate.overridden } : {}) })),
    approved: options.approve ?? false,
    ...(options.reason ? { reason: options.reason } : {}),
  });
  const generated = transition.generatedKeyId && !before.transition ? ` (new key "${transition.generatedKeyId}": --out FILE saves this plan and --plan FILE applies exactly it, key id included; its material is generated then)` : '';
  return { ...session.result(action, 'planned', planned, transition, gates, writes, `dry run: ${transition.kind} would write ${writes.filter((w) => w.change).length} of ${writes.length} targets; nothing was written${generated}`), plan };
}

export function blocked(ring: string, action: string, gates: readonly GateResult[]): GateBlockedError {
  const holding = gates.filter((gate) => gate.verdict !== 'pass' && !gate.overridden);
  const reasons = holding.map((gate) => `${gate.name} (${gate.verdict}): ${gate.reason}`);
  const command = `stem-rotor rotate ${action === 'run' ? 'advance' : action} ${ring}`;
  const next = [
    `next: once the evidence changes, run \`${command}\` again (\`stem-rotor run\` retries by itself when autoAdvance is on); \`stem-rotor status ${ring}\` shows each gate's evidence`,
    `or, if you know better than the evidence: \`${command} --override ${holding[0]?.name ?? 'GATE'} --reason "…"\` (once per gate; audited)`,
  ];
  return new GateBlockedError(`ring "${ring}": ${action} blocked by ${reasons.length} gate(s):\n  - ${reasons.join('\n  - ')}\n${next.join('\n')}`, reasons);
}

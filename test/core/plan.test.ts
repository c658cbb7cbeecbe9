/** The core's single entry point: state + what targets hold + gate verdicts + intent → one plan. */
import { describe, expect, it } from 'vitest';
import { bootstrapState } from '../../src/core/guards.js';
import { completeTransition, recordWrite } from '../../src/core/machine.js';
import { PREFLIGHT_START, plan, type Plan } from '../../src/core/plan.js';
import { activateGatesPassed, type GateResult, type InFlight, type ObservedTarget, type RingState } from '../../src/core/types.js';
import { InvalidTransitionError, TargetContentError } from '../../src/errors.js';

const T0 = '2026-11-28T10:00:00.000Z';
const pass: GateResult[] = [{ name: 'soak', verdict: 'pass', reason: 'ok' }];
const unknown: GateResult[] = [{ name: 'stem-workers', verdict: 'unknown', reason: 'broker unreachable' }];
const stamp = { now: T0, transitionId: 't-next' };

function target(name: string, keyIds: string[], active: string | null, audience: 'all' | 'verifiers' = 'all'): ObservedTarget {
  return { target: name, audience, algorithm: 'hmac-sha256', keys: keyIds.map((id) => ({ id, fingerprint: `fp-${id}`, hasSecret: audience === 'all' })), activeKeyId: audience === 'verifiers' ? null : active };
}

function transitionOf(decided: Plan): InFlight {
  if (decided.kind !== 'transition') throw new Error(`expected a transition, got ${decided.kind}`);
  return decided.state;
}

/** Writes the planned transition everywhere and folds it in, as apply does. */
function completed(state: InFlight): RingState {
  const written = recordWrite(state, { target: 'a', status: 'verified' }, T0);
  return completeTransition(written, new Map(state.transition.desired.keyIds.map((id) => [id, `fp-${id}`])), T0);
}

const stable = bootstrapState('ring', 'hmac-sha256', [target('a', ['k1'], 'k1')], T0);
const startPlan = transitionOf(plan(stable, [target('a', ['k1'], 'k1')], [], { kind: 'start', rotationId: 'rot-1', newKeyId: 'k2' }, stamp));
const added = completed(startPlan);
const both = [target('a', ['k1', 'k2'], 'k1')];

describe('plan()', () => {
  it('start plans a transition that generates the given key id in the given rotation', () => {
    expect(startPlan.transition).toMatchObject({ kind: 'start', id: 't-next', generatedKeyId: 'k2', rotationId: 'rot-1', desired: { keyIds: ['k1', 'k2'], activeKeyId: 'k1' } });
    expect(added.rotation).toMatchObject({ id: 'rot-1', phase: 'added', newKeyId: 'k2' });
  });

  it('an unknown or waiting gate blocks; a passing one plans activate', () => {
    expect(plan(added, both, unknown, { kind: 'advance' }, stamp)).toEqual({ kind: 'blocked', gates: unknown });
    expect(transitionOf(plan(added, both, pass, { kind: 'advance' }, stamp)).transition).toMatchObject({ kind: 'activate', gates: pass, desired: { activeKeyId: 'k2' } });
  });

  it('refuses a drifted target before deciding anything, and an intent that does not apply', () => {
    expect(() => plan(added, [target('a', ['k1', 'k9'], 'k1')], pass, { kind: 'advance' }, stamp)).toThrow(TargetContentError);
    expect(() => plan(stable, [target('a', ['k1'], 'k1')], pass, { kind: 'advance' }, stamp)).toThrow(InvalidTransitionError);
    expect(() => plan(added, both, [], PREFLIGHT_START, stamp)).toThrow(/already rotating/);
  });

  it('with a transition in flight: resume it, whatever the intent; abort discards it only while nothing was written', () => {
    expect(plan(startPlan, [target('a', ['k1'], 'k1')], [], { kind: 'advance' }, stamp)).toEqual({ kind: 'resume', state: startPlan });
    const discarded = plan(startPlan, [target('a', ['k1'], 'k1')], [], { kind: 'abort' }, stamp);
    expect(discarded).toMatchObject({ kind: 'discard', discarded: startPlan.transition, state: { transition: null, rotation: null } });
    const writing = recordWrite(startPlan, { target: 'a', status: 'writing', writtenAt: T0 }, T0);
    expect(plan(writing, both, [], { kind: 'abort' }, stamp).kind).toBe('resume');
  });

  it('revoke pre-empts a transition in flight', () => {
    const revoke = transitionOf(plan(startPlan, [target('a', ['k1'], 'k1')], [], { kind: 'revoke', keyId: 'k1', freshKeyId: 'k3', reason: 'leaked' }, stamp));
    expect(revoke.transition).toMatchObject({ kind: 'revoke', revokedKeyId: 'k1', generatedKeyId: 'k3', parallel: true, reason: 'leaked', desired: { keyIds: ['k3'], activeKeyId: 'k3' } });
  });
});

describe('activate gates passed (derived, never stored)', () => {
  const activating = transitionOf(plan(added, both, pass, { kind: 'advance' }, stamp));

  it('is false while added, true while its activate is in flight and after, false again when that activate is discarded', () => {
    expect(activateGatesPassed(stable)).toBe(false);
    expect(activateGatesPassed(added)).toBe(false);
    expect(activateGatesPassed(activating)).toBe(true);
    expect(activateGatesPassed(completed(activating))).toBe(true);
    const discarded = plan(activating, both, [], { kind: 'abort' }, stamp);
    expect(discarded.kind === 'discard' && activateGatesPassed(discarded.state)).toBe(false);
  });

  it('decides what revoking the old active key promotes: the new key once its gates passed, else a fresh key', () => {
    const revokeOld = { kind: 'revoke', keyId: 'k1', freshKeyId: 'k3', reason: 'leaked' } as const;
    expect(transitionOf(plan(activating, both, [], revokeOld, stamp)).transition.desired).toEqual({ keyIds: ['k2'], activeKeyId: 'k2' });
    expect(transitionOf(plan(added, both, [], revokeOld, stamp)).transition.desired).toEqual({ keyIds: ['k3'], activeKeyId: 'k3' });
  });
});

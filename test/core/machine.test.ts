import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InternalError, InvalidTransitionError, TargetContentError } from '../../src/errors.js';
import { completeTransition, nextGateSlot, planAbort, planAdvance, planStart, recordWrite } from '../../src/core/machine.js';
import { assertWriteSafe, bootstrapState, checkTargets } from '../../src/core/guards.js';
import { planRevoke, revokeNeedsNewKey } from '../../src/core/revoke.js';
import { keyBirth, rotationDue } from '../../src/core/schedule.js';
import { phaseOf, type GateResult, type InFlight, type ObservedTarget, type RingState, type StepTransition, type Transition } from '../../src/core/types.js';

const T0 = '2026-11-28T10:00:00.000Z';
const pass: GateResult[] = [{ name: 'soak', verdict: 'pass', reason: 'ok' }];
const wait: GateResult[] = [{ name: 'soak', verdict: 'wait', reason: 'soaking' }];
const unknown: GateResult[] = [{ name: 'soak', verdict: 'unknown', reason: 'no data' }];
const fp = (id: string) => `fp-${id}`;

function target(name: string, keyIds: string[], active: string | null, audience: 'all' | 'verifiers' = 'all'): ObservedTarget {
  return { target: name, audience, algorithm: 'hmac-sha256', keys: keyIds.map((id) => ({ id, fingerprint: fp(id), hasSecret: audience === 'all' })), activeKeyId: audience === 'verifiers' ? null : active };
}

function stable(): RingState {
  return bootstrapState('ring', 'hmac-sha256', [target('a', ['k1'], 'k1'), target('b', ['k1'], 'k1')], T0);
}

let counter = 0;
const stamp = () => ({ now: T0, transitionId: `t${++counter}` });

/** Applies a planned transition to simulated targets the way the engine does, guard included. */
function apply(state: InFlight, targets: ObservedTarget[]): { state: RingState; targets: ObservedTarget[] } {
  const { transition } = state;
  let current = targets;
  let next = state;
  for (const t of [...current].sort((x, y) => (x.audience === y.audience ? 0 : x.audience === 'verifiers' ? -1 : 1))) {
    assertWriteSafe(transition, t, current);
    const written = target(t.target, [...transition.desired.keyIds], transition.desired.activeKeyId, t.audience);
    current = current.map((c) => (c.target === t.target ? written : c));
    next = recordWrite(next, { target: t.target, status: 'verified' }, T0);
  }
  const fingerprints = new Map(transition.desired.keyIds.map((id) => [id, fp(id)]));
  return { state: completeTransition(next, fingerprints, T0), targets: current };
}

describe('bootstrap (S10 on first sight)', () => {
  it('adopts agreeing targets', () => {
    const state = stable();
    expect(state).toMatchObject({ activeKeyId: 'k1', keys: [{ id: 'k1', fingerprint: 'fp-k1' }], rotation: null });
    expect(phaseOf(state)).toBe('stable');
  });

  it.each([
    ['different active keys', [target('a', ['k1', 'k2'], 'k1'), target('b', ['k1', 'k2'], 'k2')]],
    ['different key sets', [target('a', ['k1'], 'k1'), target('b', ['k1', 'k2'], 'k1')]],
    ['one id, two secrets', [target('a', ['k1'], 'k1'), { ...target('b', ['k1'], 'k1'), keys: [{ id: 'k1', fingerprint: 'other', hasSecret: true }] }]],
  ])('refuses %s', (_name, observations) => {
    expect(() => bootstrapState('ring', 'hmac-sha256', observations as ObservedTarget[], T0)).toThrow(TargetContentError);
  });
});

describe('transitions', () => {
  it('start → added → activated → stable', () => {
    let targets = [target('a', ['k1'], 'k1'), target('b', ['k1'], 'k1')];
    let state: RingState = planStart(stable(), { ...stamp(), rotationId: 'r1', newKeyId: 'k2' });
    expect(state.transition).toMatchObject({ kind: 'start', desired: { keyIds: ['k1', 'k2'], activeKeyId: 'k1' }, generatedKeyId: 'k2' });
    ({ state, targets } = apply(state as InFlight, targets));
    expect(phaseOf(state)).toBe('added');
    expect(nextGateSlot(state)).toBe('beforeActivate');

    const activated = planAdvance(state, pass, stamp());
    expect(activated.kind).toBe('planned');
    ({ state, targets } = apply((activated as { state: InFlight }).state, targets));
    expect(phaseOf(state)).toBe('activated');
    expect(state.activeKeyId).toBe('k2');
    expect(nextGateSlot(state)).toBe('beforeDrop');

    const dropped = planAdvance(state, pass, stamp());
    ({ state, targets } = apply((dropped as { state: InFlight }).state, targets));
    expect(phaseOf(state)).toBe('stable');
    expect(state.keys.map((k) => k.id)).toEqual(['k2']);
    expect(targets.every((t) => t.keys.length === 1 && t.activeKeyId === 'k2')).toBe(true);
  });

  it.each([['wait', wait], ['unknown', unknown]])('a %s gate blocks advance (S6)', (_name, gates) => {
    const { state } = apply(planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), [target('a', ['k1'], 'k1')]);
    expect(planAdvance(state, gates, stamp())).toEqual({ kind: 'blocked', gates });
  });

  it('an overridden gate lets advance through', () => {
    const { state } = apply(planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), [target('a', ['k1'], 'k1')]);
    expect(planAdvance(state, [{ ...wait[0]!, overridden: { reason: 'r', by: 'me' } }], stamp()).kind).toBe('planned');
  });

  it('rejects invalid commands for the phase', () => {
    const state = stable();
    expect(() => planAdvance(state, pass, stamp())).toThrow(InvalidTransitionError);
    expect(() => planAbort(state, pass, stamp())).toThrow(InvalidTransitionError);
    const added = apply(planStart(state, { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), [target('a', ['k1'], 'k1')]).state;
    expect(() => planStart(added, { ...stamp(), rotationId: 'r2', newKeyId: 'k3' })).toThrow(InvalidTransitionError);
    expect(() => planStart(state, { ...stamp(), rotationId: 'r', newKeyId: 'k1' })).toThrow(/already used/);
    const inFlight = planStart(state, { ...stamp(), rotationId: 'r', newKeyId: 'k2' });
    expect(() => planAdvance(inFlight, pass, stamp())).toThrow(InternalError);
  });

  it('abort from added needs no gates; from activated rolls back then needs drop gates', () => {
    let targets = [target('a', ['k1'], 'k1')];
    let state = apply(planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), targets).state;
    const direct = planAbort(state, wait, stamp());
    expect(direct.kind).toBe('planned');
    expect((direct as { state: InFlight }).state.transition?.desired).toEqual({ keyIds: ['k1'], activeKeyId: 'k1' });

    ({ state, targets } = apply(planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), [target('a', ['k1'], 'k1')]));
    ({ state, targets } = apply((planAdvance(state, pass, stamp()) as { state: InFlight }).state, targets));
    const rollback = planAbort(state, wait, stamp());
    expect((rollback as { state: InFlight }).state.transition).toMatchObject({ kind: 'rollback', desired: { keyIds: ['k1', 'k2'], activeKeyId: 'k1' } });
    ({ state, targets } = apply((rollback as { state: InFlight }).state, targets));
    expect(state.rotation).toMatchObject({ phase: 'rolling-back' });
    expect(nextGateSlot(state)).toBe('beforeDrop');
    expect(planAbort(state, wait, stamp()).kind).toBe('blocked');
    expect(planAdvance(state, wait, stamp()).kind).toBe('blocked');
    const finish = planAdvance(state, pass, stamp()) as { state: InFlight };
    expect(finish.state.transition).toMatchObject({ kind: 'abort', desired: { keyIds: ['k1'], activeKeyId: 'k1' } });
  });
});

describe('revoke', () => {
  it('non-active key: removed, active kept, no new key', () => {
    const state = bootstrapState('ring', 'hmac-sha256', [target('a', ['k0', 'k1'], 'k1')], T0);
    const planned = planRevoke(state, { ...stamp(), keyId: 'k0', freshKeyId: null, reason: 'leak' });
    expect(planned.transition).toMatchObject({ kind: 'revoke', desired: { keyIds: ['k1'], activeKeyId: 'k1' }, generatedKeyId: null, parallel: true });
  });

  it('active key with no passed rotation: a fresh key', () => {
    const planned = planRevoke(stable(), { ...stamp(), keyId: 'k1', freshKeyId: 'k9', reason: 'leak' });
    expect(planned.transition).toMatchObject({ desired: { keyIds: ['k9'], activeKeyId: 'k9' }, generatedKeyId: 'k9' });
    const done = apply(planned, [target('a', ['k1'], 'k1')]).state;
    expect(done.revokedKeyIds).toEqual(['k1']);
    expect(() => planRevoke(stable(), { ...stamp(), keyId: 'k1', freshKeyId: null, reason: 'x' })).toThrow(InternalError);
  });

  it('pre-empts an in-flight transition and tolerates its half-written keys', () => {
    const inFlight = planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' });
    const planned = planRevoke(inFlight, { ...stamp(), keyId: 'k1', freshKeyId: 'k9', reason: 'leak' });
    expect(planned.transition?.tolerated).toEqual(expect.arrayContaining(['k1', 'k2']));
    expect(() => checkTargets(planned, [target('a', ['k1', 'k2'], 'k1'), target('b', ['k9'], 'k9')])).not.toThrow();
  });
});

describe('revoke pre-empting an interrupted revoke (found by the model test)', () => {
  it('never resurrects the key the interrupted revoke removed, and finishes it when it already removes the new target', () => {
    // activated: k1 → k2; a revoke of the active k2 (→ fresh k3) was interrupted after writing everything
    let { state, targets } = apply(planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), [target('a', ['k1'], 'k1')]);
    ({ state, targets } = apply((planAdvance(state, pass, stamp()) as { state: InFlight }).state, targets));
    expect(targets[0]?.activeKeyId).toBe('k2');
    const interrupted = planRevoke(state, { ...stamp(), keyId: 'k2', freshKeyId: 'k3', reason: 'leak' });
    expect(interrupted.transition?.desired).toEqual({ keyIds: ['k3'], activeKeyId: 'k3' });
    // now someone revokes k1 (still listed in the stale ring state)
    const next = planRevoke(interrupted, { ...stamp(), keyId: 'k1', freshKeyId: 'k9', reason: 'leak too' });
    expect(next.transition).toMatchObject({ desired: { keyIds: ['k3'], activeKeyId: 'k3' }, generatedKeyId: 'k3', revokedKeyId: 'k1' });
    expect(next.revokedKeyIds).toEqual(['k2']);
    expect(revokeNeedsNewKey(interrupted, 'k1')).toBe(false);
    // revoking the replacement itself gets another fresh key, still without k2
    const again = planRevoke(interrupted, { ...stamp(), keyId: 'k3', freshKeyId: 'k9', reason: 'x' });
    expect(again.transition?.desired).toEqual({ keyIds: ['k9'], activeKeyId: 'k9' });
    const done = apply(again, [target('a', ['k3'], 'k3')]).state;
    expect(done.revokedKeyIds).toEqual(['k2', 'k3']);
  });
});

describe('write guard', () => {
  const activate = (): StepTransition => {
    const added = apply(planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' }), [target('a', ['k1'], 'k1')]).state;
    return (planAdvance(added, pass, stamp()) as { state: InFlight }).state.transition as StepTransition;
  };

  it('S1: no ACTIVE=K while a verifier lacks K', () => {
    expect(() => assertWriteSafe(activate(), target('a', ['k1', 'k2'], 'k1'), [target('a', ['k1', 'k2'], 'k1'), target('v', ['k1'], null, 'verifiers')])).toThrow(/S1/);
  });

  it('S1: no activate without passing gates', () => {
    const transition = { ...activate(), gates: wait };
    expect(() => assertWriteSafe(transition, target('a', ['k1', 'k2'], 'k1'), [target('a', ['k1', 'k2'], 'k1')])).toThrow(/S1/);
  });

  it('S2: no key leaves a target while another target has it active', () => {
    const drop: Transition = { ...activate(), kind: 'drop', desired: { keyIds: ['k2'], activeKeyId: 'k2' } };
    expect(() => assertWriteSafe(drop, target('a', ['k1', 'k2'], 'k2'), [target('a', ['k1', 'k2'], 'k2'), target('b', ['k1', 'k2'], 'k1')])).toThrow(/S2/);
  });

  it('S3: never a set without its active key', () => {
    const broken: Transition = { ...activate(), desired: { keyIds: ['k1'], activeKeyId: 'k2' } };
    expect(() => assertWriteSafe(broken, target('a', ['k1'], 'k1'), [target('a', ['k1'], 'k1')])).toThrow(/S3/);
  });
});

describe('S7/S10: targets must match the state', () => {
  it('refuses drift, strangers, wrong active and foreign fingerprints', () => {
    const state = stable();
    expect(() => checkTargets(state, [target('a', ['k1', 'kx'], 'k1')])).toThrow(/never had/);
    expect(() => checkTargets(state, [target('a', ['k1'], 'kx')])).toThrow(/active key/);
    expect(() => checkTargets(state, [{ ...target('a', ['k1'], 'k1'), keys: [{ id: 'k1', fingerprint: 'zzz', hasSecret: true }] }])).toThrow(/fingerprint/);
    expect(() => checkTargets(state, [{ ...target('a', ['k1'], 'k1'), algorithm: 'ed25519' }])).toThrow(/ed25519/);
  });

  it('mid-transition, a target may be at the start or the end', () => {
    const inFlight = planStart(stable(), { ...stamp(), rotationId: 'r', newKeyId: 'k2' });
    expect(() => checkTargets(inFlight, [target('a', ['k1'], 'k1'), target('b', ['k1', 'k2'], 'k1')])).not.toThrow();
  });
});

describe('schedule', () => {
  it('counts age from the id date when it is earlier than first sight', () => {
    expect(keyBirth({ id: 'demo-20260101-abcd', fingerprint: 'x', createdAt: T0 }, 'demo-').toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(keyBirth({ id: 'custom', fingerprint: 'x', createdAt: T0 }, 'demo-').toISOString()).toBe(T0);
  });

  it('is due only when stable and older than maxAge', () => {
    const state = stable();
    expect(rotationDue(state, 'x-', 1000, new Date(Date.parse(T0) + 999))).toBe(false);
    expect(rotationDue(state, 'x-', 1000, new Date(Date.parse(T0) + 1000))).toBe(true);
  });
});

describe('property: any sequence of commands and gate verdicts keeps S1–S3 and S10', () => {
  const command = fc.oneof(
    fc.constant({ kind: 'start' as const }),
    fc.record({ kind: fc.constant('advance' as const), gates: fc.constantFrom(pass, wait, unknown) }),
    fc.record({ kind: fc.constant('abort' as const), gates: fc.constantFrom(pass, wait) }),
    fc.record({ kind: fc.constant('revoke' as const), which: fc.constantFrom('active', 'other') }),
  );

  it('holds', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 25 }), fc.boolean(), (commands, withVerifier) => {
        let targets: ObservedTarget[] = [target('a', ['k1'], 'k1'), target('b', ['k1'], 'k1'), ...(withVerifier ? [target('v', ['k1'], null, 'verifiers')] : [])];
        let state = bootstrapState('ring', 'hmac-sha256', targets, T0);
        let next = 2;
        for (const c of commands) {
          let planned: InFlight | null = null;
          try {
            if (c.kind === 'start') planned = planStart(state, { ...stamp(), rotationId: `r${next}`, newKeyId: `k${next++}` });
            else if (c.kind === 'advance' || c.kind === 'abort') {
              const decision = c.kind === 'advance' ? planAdvance(state, c.gates, stamp()) : planAbort(state, c.gates, stamp());
              if (decision.kind === 'blocked') expect(decision.gates.some((g) => g.verdict !== 'pass')).toBe(true);
              else planned = decision.state;
            } else {
              const keyId = c.which === 'active' ? state.activeKeyId : state.keys.find((k) => k.id !== state.activeKeyId)?.id;
              if (keyId) planned = planRevoke(state, { ...stamp(), keyId, freshKeyId: `k${next++}`, reason: 'p' });
            }
          } catch (error) {
            if (!(error instanceof InvalidTransitionError)) throw error;
          }
          if (!planned) continue;
          const before = targets;
          ({ state, targets } = apply(planned, targets));
          // S3: a ring always has its active key
          expect(state.keys.map((k) => k.id)).toContain(state.activeKeyId);
          // S10: every target agrees with the state at the end of each transition
          for (const t of targets) {
            expect(t.keys.map((k) => k.id)).toEqual(state.keys.map((k) => k.id));
            if (t.audience === 'all') expect(t.activeKeyId).toBe(state.activeKeyId);
          }
          // S1: a newly active key was already held by every target before (revoke excepted)
          const newlyActive = state.activeKeyId;
          const wasActive = before.find((t) => t.audience === 'all')?.activeKeyId;
          if (newlyActive !== wasActive && planned.transition?.kind !== 'revoke') {
            expect(before.every((t) => t.keys.some((k) => k.id === newlyActive))).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** Stored state across stem-rotor releases: a rollback written as `added` + `aborting` loads as `rolling-back`. */
import { describe, expect, it } from 'vitest';
import { nextGateSlot, planAdvance } from '../../src/core/machine.js';
import { parseStoredState } from '../../src/core/state-schema.js';
import { phaseOf } from '../../src/core/types.js';

const T0 = '2026-11-28T10:00:00.000Z';
const stored = (rotation: Record<string, unknown>) =>
  JSON.stringify({
    schema: 1,
    ring: 'ring',
    algorithm: 'hmac-sha256',
    keys: [
      { id: 'k1', fingerprint: 'f1', createdAt: T0 },
      { id: 'k2', fingerprint: 'f2', createdAt: T0 },
    ],
    activeKeyId: 'k1',
    revokedKeyIds: [],
    rotation: { id: 'rot-1', oldKeyId: 'k1', newKeyId: 'k2', activateGatesPassed: true, startedAt: T0, phaseVerifiedAt: T0, ...rotation },
    transition: null,
    updatedAt: T0,
  });

describe('stored rotation phases', () => {
  it("a 0.1 rollback (phase added, aborting true) is rolling-back: the drop gates guard removing the new key", () => {
    const state = parseStoredState(stored({ phase: 'added', aborting: true }), 'state file', 'ring');
    expect(state.rotation?.phase).toBe('rolling-back');
    expect(state.rotation).not.toHaveProperty('aborting');
    expect(phaseOf(state)).toBe('added'); // what users see is unchanged
    expect(nextGateSlot(state)).toBe('beforeDrop');
    const decision = planAdvance(state, [{ name: 'soak', verdict: 'pass', reason: 'ok' }], { now: T0, transitionId: 't1' });
    expect(decision.kind === 'planned' && decision.state.transition).toMatchObject({ kind: 'abort', desired: { keyIds: ['k1'], activeKeyId: 'k1' } });
  });

  it('a 0.1 added rotation (aborting false) is added; the new phase name round-trips', () => {
    expect(parseStoredState(stored({ phase: 'added', aborting: false }), 'state file', 'ring').rotation?.phase).toBe('added');
    expect(parseStoredState(stored({ phase: 'rolling-back' }), 'state file', 'ring').rotation?.phase).toBe('rolling-back');
    expect(() => parseStoredState(stored({ phase: 'dropping' }), 'state file', 'ring')).toThrow(/state state file is invalid at rotation.phase/);
  });
});

describe('stored transitions', () => {
  const withTransition = (transition: Record<string, unknown>) => {
    const state = JSON.parse(stored({ phase: 'added' }));
    const common = { id: 't1', from: { keyIds: ['k1', 'k2'], activeKeyId: 'k1' }, desired: { keyIds: ['k1', 'k2'], activeKeyId: 'k2' }, tolerated: [], parallel: false, startedAt: T0, gates: [], writes: {} };
    return JSON.stringify({ ...state, transition: { ...common, ...transition } });
  };

  it('each kind carries what it needs: a start its new key and rotation, a revoke its revoked key', () => {
    const activate = parseStoredState(withTransition({ kind: 'activate', generatedKeyId: null, rotationId: 'rot-1', revokedKeyId: null }), 'state file', 'ring');
    expect(activate.transition?.kind).toBe('activate');
    expect(() => parseStoredState(withTransition({ kind: 'start', generatedKeyId: null, rotationId: 'rot-1', revokedKeyId: null }), 'state file', 'ring')).toThrow(/invalid at transition.generatedKeyId/);
    expect(() => parseStoredState(withTransition({ kind: 'revoke', generatedKeyId: null, rotationId: null, revokedKeyId: null }), 'state file', 'ring')).toThrow(/invalid at transition.revokedKeyId/);
    expect(() => parseStoredState(withTransition({ kind: 'drop', generatedKeyId: 'k3', rotationId: 'rot-1', revokedKeyId: null }), 'state file', 'ring')).toThrow(/invalid at transition.generatedKeyId/);
  });

  it('activateGatesPassed, stored before 0.2, is dropped on load: it is derived from the phase and the transition', () => {
    const state = parseStoredState(stored({ phase: 'added' }), 'state file', 'ring');
    expect(state.rotation).not.toHaveProperty('activateGatesPassed');
  });
});

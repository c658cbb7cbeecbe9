/** The approval gate over recorded approvals: bound to exactly one step of one rotation. */
import { describe, expect, it } from 'vitest';
import { recordApproval } from '../../src/core/approval.js';
import { bootstrapState } from '../../src/core/guards.js';
import { completeTransition, recordWrite } from '../../src/core/machine.js';
import { plan } from '../../src/core/plan.js';
import type { InFlight, ObservedTarget, RingState } from '../../src/core/types.js';
import type { RingConfig } from '../../src/config/schema.js';
import { createApprovalGate } from '../../src/gates/approval.js';

const T0 = '2026-11-28T10:00:00.000Z';
const alice = { user: 'alice', host: 'laptop' };
const cron = { user: 'rotor-cron', host: 'k8s' };
const ring = { name: 'ring' } as RingConfig;

function target(keyIds: string[], active: string): ObservedTarget {
  return { target: 'a', audience: 'all', algorithm: 'hmac-sha256', keys: keyIds.map((id) => ({ id, fingerprint: `fp-${id}`, hasSecret: true })), activeKeyId: active };
}

function completed(state: InFlight): RingState {
  return completeTransition(recordWrite(state, { target: 'a', status: 'verified' }, T0), new Map(state.transition.desired.keyIds.map((id) => [id, `fp-${id}`])), T0);
}

function rotationAdded(rotationId: string, newKeyId: string, base: RingState): RingState {
  const decided = plan(base, [target(base.keys.map((key) => key.id), base.activeKeyId)], [], { kind: 'start', rotationId, newKeyId }, { now: T0, transitionId: `t-${rotationId}`, by: cron });
  if (decided.kind !== 'transition') throw new Error(decided.kind);
  return completed(decided.state);
}

async function verdictOn(state: RingState, options: { requireDistinctApprover?: boolean; approvalTtl?: number } = {}, now = T0) {
  return createApprovalGate({ name: 'approval', ...options }).evaluate({ ring, state, slot: 'beforeActivate', now: new Date(now), stem: null });
}

describe('approval gate', () => {
  const stable = bootstrapState('ring', 'hmac-sha256', [target(['k1'], 'k1')], T0);
  const added = rotationAdded('rot-1', 'k2', stable);

  it('passes on an approval of this step, by someone other than the starter when required', async () => {
    expect(added.rotation?.startedBy).toEqual(cron);
    expect((await verdictOn(added)).verdict).toBe('wait');
    expect(await verdictOn(recordApproval(added, alice, 'CHG-7', T0), { requireDistinctApprover: true })).toMatchObject({ verdict: 'pass', reason: `approved by alice at ${T0}: CHG-7` });
    expect((await verdictOn(recordApproval(added, cron, 'self', T0), { requireDistinctApprover: true })).reason).toContain('rotor-cron started this rotation');
    expect((await verdictOn(recordApproval(added, cron, 'self', T0))).verdict).toBe('pass');
  });

  it('never carries an approval over to another rotation, and counts it only within approvalTtl', async () => {
    const approvedElsewhere = recordApproval(rotationAdded('rot-2', 'k3', stable), alice, 'for rot-2', T0);
    const carried = { ...added, approval: approvedElsewhere.approval };
    expect(await verdictOn(carried)).toMatchObject({ verdict: 'wait', reason: expect.stringContaining('was for another step or rotation') });
    const approved = recordApproval(added, alice, 'ok', T0);
    expect((await verdictOn(approved, { approvalTtl: 60_000 }, '2026-11-28T10:01:00.000Z')).verdict).toBe('pass');
    expect((await verdictOn(approved, { approvalTtl: 60_000 }, '2026-11-28T10:01:00.001Z')).reason).toContain('expired (approvalTtl 1m)');
  });

  it('cannot prove a distinct approver for a rotation whose starter was not recorded: it waits', async () => {
    const { startedBy: _unknown, ...rotation } = added.rotation as NonNullable<RingState['rotation']>;
    const old = recordApproval({ ...added, rotation }, alice, 'ok', T0);
    expect((await verdictOn(old, { requireDistinctApprover: true })).reason).toContain('was not recorded');
  });
});

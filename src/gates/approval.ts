/**
 * `approval`: a human's recorded approval of exactly the next step (`stem-rotor approve RING`, or
 * `rotate advance RING --approve`). Optionally from someone other than who started the rotation,
 * and only for so long.
 */
import { nextStep } from '../core/approval.js';
import { formatDuration } from '../duration.js';
import { verdictOf, type Gate, type GateContext, type GateResult } from './types.js';

export const GATE_TYPE = 'approval';

export interface ApprovalGateOptions {
  readonly name: string;
  /** The approver may not be whoever started the rotation. */
  readonly requireDistinctApprover?: boolean;
  /** An approval older than this no longer counts (ms). */
  readonly approvalTtl?: number;
}

export function createApprovalGate(options: ApprovalGateOptions): Gate {
  const verdict = verdictOf(options.name);
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const { state, ring } = context;
      const ask = `run \`stem-rotor approve ${ring.name} --reason "…"\` (or \`stem-rotor rotate advance ${ring.name} --approve\`)`;
      const next = nextStep(state);
      const approval = state.approval;
      if (!next) return verdict('wait', `nothing awaits approval; ${ask} once a step does`);
      if (!approval) return verdict('wait', `the ${next.step} of rotation ${state.rotation?.id} needs a recorded approval: ${ask}`);
      const who = approval.by.user;
      const evidence = { approvedBy: who, approvedAt: approval.at, step: approval.step };
      if (approval.subject !== next.subject) return verdict('wait', `the approval by ${who} was for another step or rotation (${approval.step}); the ${next.step} needs its own: ${ask}`, evidence);
      const age = context.now.getTime() - Date.parse(approval.at);
      if (options.approvalTtl !== undefined && age > options.approvalTtl) {
        return verdict('wait', `the approval by ${who} at ${approval.at} expired (approvalTtl ${formatDuration(options.approvalTtl)}): ${ask}`, evidence);
      }
      if (options.requireDistinctApprover) {
        const starter = state.rotation?.startedBy;
        if (!starter) return verdict('wait', `requireDistinctApprover: who started rotation ${state.rotation?.id} was not recorded, so ${who} cannot be shown to be someone else; approve by override (\`--override ${options.name} --reason\`)`, evidence);
        if (starter.user === who) return verdict('wait', `requireDistinctApprover: ${who} started this rotation and cannot also approve it; someone else must: ${ask}`, evidence);
      }
      return verdict('pass', `approved by ${who} at ${approval.at}: ${approval.reason}`, evidence);
    },
  };
}

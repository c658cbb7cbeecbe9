/** `approval`: a human runs `rotate advance --approve`. */
import type { Gate, GateContext, GateResult } from './types.js';

export const GATE_TYPE = 'approval';

export function createApprovalGate(options: { readonly name: string }): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      return context.approved
        ? { name: options.name, verdict: 'pass', reason: 'approved by the operator (--approve)' }
        : { name: options.name, verdict: 'wait', reason: `needs a human: run \`stem-rotor rotate advance ${context.ring.name} --approve\`` };
    },
  };
}

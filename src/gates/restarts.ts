/**
 * `restarts` (built in, when a Kubernetes target restarts workloads after its writes): the next step
 * waits until every restarted workload's controller has finished — the pods run the template the
 * restart stamped, and are available. Past `restartTimeout` it still blocks, and says so.
 */
import { formatDuration } from '../duration.js';
import { phaseTimes, verdictOf, type Gate, type GateContext, type GateResult } from './types.js';

export const RESTARTS_GATE = 'restarts';

export function createRestartsGate(options: { readonly timeoutMs: number }): Gate {
  const verdict = verdictOf(RESTARTS_GATE);
  return {
    name: RESTARTS_GATE,
    async evaluate(context: GateContext): Promise<GateResult> {
      if (!context.restarts) return verdict('unknown', 'no target reports its restarted workloads');
      const rollouts = await context.restarts();
      const waiting = rollouts.filter((rollout) => !rollout.done);
      const evidence = { workloads: rollouts.map((rollout) => ({ workload: rollout.workload, done: rollout.done, detail: rollout.detail })) };
      if (waiting.length === 0) return verdict('pass', `${rollouts.length} restarted workload${rollouts.length === 1 ? '' : 's'} finished rolling out`, evidence);
      const listed = waiting.map((rollout) => `${rollout.workload} (${rollout.detail})`).join('; ');
      const since = phaseTimes(context)?.verified;
      const elapsed = since ? context.now.getTime() - since.getTime() : 0;
      if (elapsed > options.timeoutMs) {
        return verdict('wait', `restart not finished ${formatDuration(elapsed)} after the write (restartTimeout ${formatDuration(options.timeoutMs)}): ${listed}; see \`kubectl rollout status\` and the pods' events`, evidence);
      }
      return verdict('wait', `restart in progress: ${listed}`, evidence);
    },
  };
}

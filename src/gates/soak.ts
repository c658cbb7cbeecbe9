/** `soak`: time since every target verified the write that entered the current phase. */
import { formatDuration } from '../duration.js';
import type { Gate, GateContext, GateResult } from './types.js';

export const GATE_TYPE = 'soak';

export interface SoakOptions {
  readonly name: string;
  readonly durationMs: number;
}

export function createSoakGate(options: SoakOptions): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const since = context.state.rotation?.phaseVerifiedAt;
      const started = since ? Date.parse(since) : Number.NaN;
      if (Number.isNaN(started)) return { name: options.name, verdict: 'unknown', reason: 'no verified write time for the current phase' };
      const elapsed = context.now.getTime() - started;
      const evidence = { since, elapsedMs: elapsed, requiredMs: options.durationMs };
      if (elapsed < 0) return { name: options.name, verdict: 'unknown', reason: `the phase was verified in the future (${since}); check the clock`, evidence };
      if (elapsed >= options.durationMs) {
        return { name: options.name, verdict: 'pass', reason: `soaked ${formatDuration(elapsed)} of ${formatDuration(options.durationMs)}`, evidence };
      }
      return { name: options.name, verdict: 'wait', reason: `soaking: ${formatDuration(options.durationMs - elapsed)} left of ${formatDuration(options.durationMs)}`, evidence };
    },
  };
}

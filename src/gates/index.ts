/** Builds a ring's gates for a slot from config, and evaluates them failing closed. */
import type { GateConfig, RingConfig } from '../config/schema.js';
import type { GateSlot, StepSlot } from '../core/machine.js';
import { createApprovalGate } from './approval.js';
import { createPrometheusGate, type PrometheusOptions } from './prometheus.js';
import { createSoakGate } from './soak.js';
import { createStemBacklogGate } from './stem-backlog.js';
import { createStemDlqGate } from './stem-dlq.js';
import { createStemWorkersGate } from './stem-workers.js';
import { createStemSignersGate } from './stem-signers.js';
import type { Gate, GateContext, GateResult } from './types.js';
import { createRestartsGate } from './restarts.js';
import { createWindowGate } from './window.js';

export type { Gate, GateContext, GateResult } from './types.js';

export function gateName(config: GateConfig): string {
  return config.name ?? config.type;
}

/** A prometheus gate's settings as the gate and `check` use them. */
export function prometheusOptions(config: Extract<GateConfig, { type: 'prometheus' }>): PrometheusOptions {
  return {
    name: gateName(config),
    url: config.url,
    query: config.query,
    timeoutMs: config.timeout,
    ...(config.liveness ? { liveness: config.liveness } : {}),
    ...(config.bearerTokenEnv ? { bearerTokenEnv: config.bearerTokenEnv } : {}),
    ...(config.username ? { username: config.username } : {}),
    ...(config.passwordEnv ? { passwordEnv: config.passwordEnv } : {}),
  };
}

/**
 * Every gate before a step: the ring's own, then the built-in `restarts` when a target restarts
 * workloads, and `window` when the ring has windows or freezes.
 */
export function gatesBefore(ring: RingConfig, slot: StepSlot): Gate[] {
  const configured = slot === 'beforeStart' ? [] : buildGates(ring, slot);
  const step = slot === 'beforeStart' ? 'start' : slot === 'beforeActivate' ? 'activate' : 'drop';
  const window = ring.policy.windows[step];
  const restartTimeouts = ring.targets.flatMap((target) => (target.provider === 'kubernetes-secret' && target.restart.length + target.restartDeployments.length > 0 ? [target.restartTimeout] : []));
  return [
    ...configured,
    ...(slot !== 'beforeStart' && restartTimeouts.length > 0 ? [createRestartsGate({ timeoutMs: Math.max(...restartTimeouts) })] : []),
    ...(window || ring.policy.freeze.length > 0 ? [createWindowGate({ step, freeze: ring.policy.freeze, ...(window ? { window } : {}) })] : []),
  ];
}

function buildGates(ring: RingConfig, slot: GateSlot): Gate[] {
  return ring.gates[slot].map((config) => {
    switch (config.type) {
      case 'soak':
        return createSoakGate({ name: gateName(config), durationMs: config.duration ?? (slot === 'beforeActivate' ? ring.policy.propagate : ring.policy.drain) });
      case 'approval':
        return createApprovalGate({ name: gateName(config), requireDistinctApprover: config.requireDistinctApprover, ...(config.approvalTtl === undefined ? {} : { approvalTtl: config.approvalTtl }) });
      case 'stem-workers':
        return createStemWorkersGate({
          name: gateName(config),
          minWorkers: config.minWorkers,
          staleAfterMs: config.staleAfter ?? 3 * (ring.stem?.heartbeatInterval ?? 10_000),
          clockSkewMs: config.clockSkew,
          startupAllowanceMs: config.startupAllowance,
        });
      case 'stem-dlq':
        return createStemDlqGate({ name: gateName(config), block: config.block, maxEntries: config.maxEntries, clockSkewMs: config.clockSkew });
      case 'stem-backlog':
        return createStemBacklogGate({ name: gateName(config), batchSize: config.batchSize });
      case 'stem-signers':
        return createStemSignersGate({ name: gateName(config), graceMs: config.grace, allowIdle: config.allowIdle, batchSize: config.batchSize });
      case 'prometheus':
        return createPrometheusGate(prometheusOptions(config));
    }
  });
}

/** Every gate runs; one that throws is `unknown` (S6: an unreachable signal never passes). */
export async function evaluateGates(gates: readonly Gate[], context: GateContext): Promise<GateResult[]> {
  return Promise.all(
    gates.map(async (gate) => {
      try {
        return await gate.evaluate(context);
      } catch (error) {
        return { name: gate.name, verdict: 'unknown' as const, reason: `evidence unavailable: ${(error as Error).message}` };
      }
    }),
  );
}

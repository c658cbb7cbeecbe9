/** Builds a ring's gates for a slot from config, and evaluates them failing closed. */
import type { GateConfig, RingConfig } from '../config/schema.js';
import type { GateSlot, StepSlot } from '../core/machine.js';
import { createApprovalGate } from './approval.js';
import type { PrometheusOptions } from './prometheus.js';
import { createSoakGate } from './soak.js';
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

function windowOf(ring: RingConfig, slot: StepSlot) {
  const step = slot === 'beforeStart' ? 'start' : slot === 'beforeActivate' ? 'activate' : 'drop';
  return { step, window: ring.policy.windows[step], gated: ring.policy.windows[step] !== undefined || ring.policy.freeze.length > 0 } as const;
}

function restartTimeouts(ring: RingConfig): number[] {
  return ring.targets.flatMap((target) => (target.provider === 'kubernetes-secret' && target.restart.length + target.restartDeployments.length > 0 ? [target.restartTimeout] : []));
}

/** The names of the gates before a step (see gatesBefore), without building them. */
export function gateNamesBefore(ring: RingConfig, slot: StepSlot): string[] {
  return [
    ...(slot === 'beforeStart' ? [] : ring.gates[slot].map(gateName)),
    ...(slot !== 'beforeStart' && restartTimeouts(ring).length > 0 ? ['restarts'] : []),
    ...(windowOf(ring, slot).gated ? ['window'] : []),
  ];
}

/**
 * Every gate before a step: the ring's own, then the built-in `restarts` when a target restarts
 * workloads, and `window` when the ring has windows or freezes. A gate's module is loaded only
 * when a ring has one (the stem-* gates bring Redis and SQL readers with them).
 */
export async function gatesBefore(ring: RingConfig, slot: StepSlot): Promise<Gate[]> {
  const configured = slot === 'beforeStart' ? [] : await buildGates(ring, slot);
  const { step, window, gated } = windowOf(ring, slot);
  const timeouts = restartTimeouts(ring);
  return [
    ...configured,
    ...(slot !== 'beforeStart' && timeouts.length > 0 ? [createRestartsGate({ timeoutMs: Math.max(...timeouts) })] : []),
    ...(gated ? [createWindowGate({ step, freeze: ring.policy.freeze, ...(window ? { window } : {}) })] : []),
  ];
}

function buildGates(ring: RingConfig, slot: GateSlot): Promise<Gate[]> {
  return Promise.all(
    ring.gates[slot].map(async (config) => {
      switch (config.type) {
        case 'soak':
          return createSoakGate({ name: gateName(config), durationMs: config.duration ?? (slot === 'beforeActivate' ? ring.policy.propagate : ring.policy.drain) });
        case 'approval':
          return createApprovalGate({ name: gateName(config), requireDistinctApprover: config.requireDistinctApprover, ...(config.approvalTtl === undefined ? {} : { approvalTtl: config.approvalTtl }) });
        case 'stem-workers':
          return (await import('./stem-workers.js')).createStemWorkersGate({
            name: gateName(config),
            minWorkers: config.minWorkers,
            staleAfterMs: config.staleAfter ?? 3 * (ring.stem?.heartbeatInterval ?? 10_000),
            clockSkewMs: config.clockSkew,
            startupAllowanceMs: config.startupAllowance,
          });
        case 'stem-dlq':
          return (await import('./stem-dlq.js')).createStemDlqGate({ name: gateName(config), block: config.block, maxEntries: config.maxEntries, clockSkewMs: config.clockSkew });
        case 'stem-backlog':
          return (await import('./stem-backlog.js')).createStemBacklogGate({ name: gateName(config), batchSize: config.batchSize });
        case 'stem-signers':
          return (await import('./stem-signers.js')).createStemSignersGate({ name: gateName(config), graceMs: config.grace, allowIdle: config.allowIdle, batchSize: config.batchSize });
        case 'prometheus':
          return (await import('./prometheus.js')).createPrometheusGate(prometheusOptions(config));
      }
    }),
  );
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

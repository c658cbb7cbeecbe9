/**
 * `/metrics` (prom-client) and `/healthz` for `run --interval --listen`. Loaded only by the daemon.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { StatusReport } from '../engine/status.js';

export interface DaemonMetrics {
  /** Where it actually listens (`host:port`; the port is the real one when 0 was asked for). */
  readonly address: string;
  recordPass(results: readonly { ring: string; outcome: string; writes?: number }[], statuses: readonly StatusReport[]): void;
  close(): Promise<void>;
}

const PHASES = ['stable', 'added', 'activated'];
const VERDICTS = ['pass', 'wait', 'unknown'];

export async function serveMetrics(listen: string, health: () => Promise<{ ok: boolean; detail: string }>): Promise<DaemonMetrics> {
  const registry = new Registry();
  const phase = new Gauge({ name: 'stem_rotor_ring_phase', help: 'Current phase of each ring (1 for the current one)', labelNames: ['ring', 'phase'], registers: [registry] });
  const keyAge = new Gauge({ name: 'stem_rotor_active_key_age_seconds', help: 'Age of the active key', labelNames: ['ring'], registers: [registry] });
  const gate = new Gauge({ name: 'stem_rotor_gate_verdict', help: 'Verdict of each gate before the next step (1 for the current verdict)', labelNames: ['ring', 'gate', 'verdict'], registers: [registry] });
  const stuck = new Gauge({ name: 'stem_rotor_stuck', help: '1 when a rotation has been blocked longer than policy.stuckAfter', labelNames: ['ring'], registers: [registry] });
  const runs = new Counter({ name: 'stem_rotor_runs_total', help: 'Scheduled passes per ring by outcome', labelNames: ['ring', 'outcome'], registers: [registry] });
  const writes = new Counter({ name: 'stem_rotor_writes_total', help: 'Target writes made by the scheduled job', labelNames: ['ring'], registers: [registry] });
  const failures = new Counter({ name: 'stem_rotor_failures_total', help: 'Failed scheduled passes per ring', labelNames: ['ring'], registers: [registry] });

  const server: Server = createServer((request, response) => {
    void (async () => {
      if (request.url === '/metrics') {
        response.writeHead(200, { 'content-type': registry.contentType });
        response.end(await registry.metrics());
      } else if (request.url === '/healthz') {
        const result = await health().catch((error: Error) => ({ ok: false, detail: error.message }));
        response.writeHead(result.ok ? 200 : 503, { 'content-type': 'text/plain' });
        response.end(`${result.ok ? 'ok' : 'unhealthy'}: ${result.detail}\n`);
      } else {
        response.writeHead(404).end();
      }
    })();
  });
  const separator = listen.lastIndexOf(':');
  const host = separator > 0 ? listen.slice(0, separator) : '0.0.0.0';
  const port = Number(listen.slice(separator + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });

  const bound = server.address();
  const address = typeof bound === 'object' && bound !== null ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : String(bound);
  return {
    address,
    recordPass(results, statuses) {
      for (const result of results) {
        runs.inc({ ring: result.ring, outcome: result.outcome });
        if (result.outcome === 'failed') failures.inc({ ring: result.ring });
        if (result.writes) writes.inc({ ring: result.ring }, result.writes);
      }
      for (const status of statuses) {
        for (const candidate of PHASES) phase.set({ ring: status.ring, phase: candidate }, candidate === status.phase ? 1 : 0);
        const active = status.keys.find((key) => key.active);
        if (active) keyAge.set({ ring: status.ring }, Math.round(active.ageMs / 1000));
        gate.reset();
        for (const result of status.gates) for (const verdict of VERDICTS) gate.set({ ring: status.ring, gate: result.name, verdict }, verdict === result.verdict ? 1 : 0);
        stuck.set({ ring: status.ring }, status.stuckForMs === null ? 0 : 1);
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

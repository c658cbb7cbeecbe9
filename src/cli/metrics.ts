/**
 * stem-rotor's metrics (prom-client) in every mode: served on `/metrics` with `/healthz` by the
 * daemon, written as a node_exporter textfile, or pushed to a Pushgateway by `run --once`. Loaded
 * only by `run` when one of those is asked for.
 */
import { chmodSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Pushgateway, Registry } from 'prom-client';
import type { StatusReport } from '../engine/status.js';
import { IoError, RotorError } from '../errors.js';
import { writeFileAtomically } from '../files/regular.js';
import { notificationFailures } from '../notify/index.js';

export interface RotorMetrics {
  readonly registry: Registry;
  /** One pass of the scheduled job: each ring's outcome and, after it, its status. */
  recordPass(results: readonly { ring: string; outcome: string; writes?: number }[], statuses: readonly StatusReport[], now: Date): void;
}

export interface MetricsServer {
  /** Where it actually listens (`host:port`; the port is the real one when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

const PHASES = ['stable', 'added', 'activated'];
const VERDICTS = ['pass', 'wait', 'unknown'];

const seconds = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso) / 1000);

export function createRotorMetrics(): RotorMetrics {
  const registry = new Registry();
  const registers = [registry];
  const phase = new Gauge({ name: 'stem_rotor_ring_phase', help: 'Current phase of each ring (1 for the current one)', labelNames: ['ring', 'phase'], registers });
  const keyAge = new Gauge({ name: 'stem_rotor_active_key_age_seconds', help: 'Age of the active key', labelNames: ['ring'], registers });
  const gate = new Gauge({ name: 'stem_rotor_gate_verdict', help: 'Verdict of each gate before the next step (1 for the current verdict)', labelNames: ['ring', 'gate', 'verdict'], registers });
  const stuck = new Gauge({ name: 'stem_rotor_stuck', help: '1 when a rotation has been blocked longer than policy.stuckAfter', labelNames: ['ring'], registers });
  const runs = new Counter({ name: 'stem_rotor_runs_total', help: 'Scheduled passes per ring by outcome', labelNames: ['ring', 'outcome'], registers });
  const writes = new Counter({ name: 'stem_rotor_writes_total', help: 'Target writes made by the scheduled job', labelNames: ['ring'], registers });
  const failures = new Counter({ name: 'stem_rotor_failures_total', help: 'Failed scheduled passes per ring', labelNames: ['ring'], registers });
  const lastPass = new Gauge({ name: 'stem_rotor_last_pass_timestamp_seconds', help: 'When the scheduled job last finished a pass over every ring', registers });
  const lastSuccess = new Gauge({ name: 'stem_rotor_last_success_timestamp_seconds', help: 'When the scheduled job last handled the ring without failing', labelNames: ['ring'], registers });
  const keyCreated = new Gauge({ name: 'stem_rotor_active_key_created_timestamp_seconds', help: 'When the active key was created (the date in its id, or when first seen)', labelNames: ['ring'], registers });
  const due = new Gauge({ name: 'stem_rotor_next_rotation_due_timestamp_seconds', help: 'When the active key reaches policy.maxAge and run starts a rotation', labelNames: ['ring'], registers });
  const revoked = new Gauge({ name: 'stem_rotor_revoked_keys', help: 'Key ids ever revoked in the ring (rises on each revoke)', labelNames: ['ring'], registers });
  const notifyFailed = new Counter({ name: 'stem_rotor_notifications_failed_total', help: 'Notifications a sink did not accept after retries', labelNames: ['sink'], registers });
  const counted = new Map<string, number>();
  const phaseEntered = new Gauge({ name: 'stem_rotor_phase_entered_timestamp_seconds', help: 'When the ring entered its current rotation phase (absent while stable)', labelNames: ['ring'], registers });
  return {
    registry,
    recordPass(results, statuses, now) {
      for (const result of results) {
        runs.inc({ ring: result.ring, outcome: result.outcome });
        if (result.outcome === 'failed') failures.inc({ ring: result.ring });
        else lastSuccess.set({ ring: result.ring }, now.getTime() / 1000);
        if (result.writes) writes.inc({ ring: result.ring }, result.writes);
      }
      gate.reset();
      phaseEntered.reset();
      for (const status of statuses) {
        const ring = status.ring;
        for (const candidate of PHASES) phase.set({ ring, phase: candidate }, candidate === status.phase ? 1 : 0);
        const active = status.keys.find((key) => key.active);
        if (active) keyAge.set({ ring }, Math.round(active.ageMs / 1000));
        for (const result of status.gates) for (const verdict of VERDICTS) gate.set({ ring, gate: result.name, verdict }, verdict === result.verdict ? 1 : 0);
        stuck.set({ ring }, status.stuckForMs === null ? 0 : 1);
        revoked.set({ ring }, status.revokedKeyIds.length);
        keyCreated.set({ ring }, seconds(status.schedule.activeKeyCreatedAt) as number);
        due.set({ ring }, seconds(status.schedule.nextRotationDueAt) as number);
        const entered = seconds(status.schedule.phaseEnteredAt);
        if (entered !== null) phaseEntered.set({ ring }, entered);
      }
      for (const [sink, total] of notificationFailures()) {
        notifyFailed.inc({ sink }, total - (counted.get(sink) ?? 0));
        counted.set(sink, total);
      }
      lastPass.set(now.getTime() / 1000);
    },
  };
}

export async function serveMetrics(listen: string, metrics: RotorMetrics, health: () => Promise<{ ok: boolean; detail: string }>): Promise<MetricsServer> {
  const { registry } = metrics;
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
  return {
    address: typeof bound === 'object' && bound !== null ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : String(bound),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * node_exporter's textfile collector format, written atomically (a temp file beside it that does
 * not end in `.prom`, then a rename), readable by the exporter's user.
 */
export async function writeMetricsFile(path: string, metrics: RotorMetrics): Promise<void> {
  const text = await metrics.registry.metrics();
  try {
    const existing = statSync(path, { throwIfNoEntry: false });
    writeFileAtomically(path, text, existing);
    if (!existing) chmodSync(path, 0o644);
  } catch (error) {
    // name the metrics file, not the temp file beside it
    const errno = error instanceof IoError ? error.code.replace(/^IO_/, '') : (error as NodeJS.ErrnoException).code;
    throw errno ? new IoError('write the metrics file', path, errno, { cause: error }) : error;
  }
}

/** Replaces the job's group on a Pushgateway (PUT /metrics/job/stem-rotor). */
export async function pushMetrics(url: string, metrics: RotorMetrics): Promise<void> {
  const gateway = new Pushgateway(url, { timeout: 10_000 }, metrics.registry);
  try {
    const { resp } = await gateway.push({ jobName: 'stem-rotor' });
    const status = (resp as { statusCode?: number } | undefined)?.statusCode;
    if (status !== undefined && (status < 200 || status >= 300)) throw new Error(`HTTP ${status}`);
  } catch (error) {
    throw new RotorError(`pushgateway ${url}: push failed: ${(error as Error).message}`);
  }
}

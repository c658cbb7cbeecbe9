/**
 * `stem-workers`: every live Stem worker restarted after the phase's write was verified (Stem reads
 * its keys once, at start). Live = heartbeat key present and fresh (stem-interop §4). No heartbeat
 * data is `unknown`, never a pass.
 */
import { formatDuration } from '../duration.js';
import type { Redis } from 'ioredis';
import type { StemSignals } from '../config/schema.js';
import { stemKeys } from '../stem/redis-keys.js';
import type { SqlClient } from '../stem/sql.js';
import { sqlHeartbeats } from '../stem/sql-evidence.js';
import { phaseTimes, requireStem, type Gate, type GateContext, verdictOf, type GateResult } from './types.js';

export const GATE_TYPE = 'stem-workers';

export interface StemWorkersOptions {
  readonly name: string;
  readonly minWorkers: number;
  /** Heartbeats older than this are dead workers. */
  readonly staleAfterMs: number;
  /** Assumed clock difference where it cannot be measured. */
  readonly clockSkewMs: number;
  /** A process may read its environment this long before it stamps `startedAt`. */
  readonly startupAllowanceMs: number;
}

export interface WorkerHeartbeat {
  readonly workerId: string;
  readonly host: string | null;
  readonly pid: number | null;
  readonly startedAt: string | null;
  readonly timestamp: string | null;
  /**
   * The worker's clock minus Redis's, from its heartbeat: Stem stamps `timestamp` and then sets the
   * key with `PX heartbeatTtl`, so the remaining TTL tells when, in Redis time, it was written.
   * Null when it cannot be measured (no TTL on the key, or a TTL longer than configured).
   */
  readonly clockOffsetMs: number | null;
}

export interface HeartbeatScan {
  readonly live: WorkerHeartbeat[];
  readonly dead: string[];
  readonly malformed: string[];
  /** Live heartbeats of workers in another worker namespace (not this ring's fleet). */
  readonly otherNamespace: string[];
  /** The rotor's clock minus Redis's (TIME), and how far off that reading can be. */
  readonly rotorClock: { readonly offsetMs: number; readonly uncertaintyMs: number } | null;
  /** A heartbeat's remaining TTL exceeded stem.heartbeatTtl: clocks are not measured (clockSkew applies). */
  readonly heartbeatTtlMismatch: boolean;
  /** False where the backend cannot reveal worker clocks (PostgreSQL, SQLite): clockSkew applies. */
  readonly clocksMeasurable: boolean;
}

/** Time between a worker stamping its heartbeat and Redis applying the SET, allowed for in every offset. */
const HEARTBEAT_WRITE_ALLOWANCE_MS = 50;

type HeartbeatJson = { namespace?: unknown; timestamp?: unknown; extras?: { startedAt?: unknown; host?: unknown; hostname?: unknown; pid?: unknown } };

/**
 * Sorts one heartbeat into the scan: malformed, dead (stale), another worker namespace, or live.
 * `namespace` is only compared where the heartbeat keeps its own (Redis; §6).
 */
function classifyHeartbeat(scan: HeartbeatScan, id: string, heartbeat: HeartbeatJson, context: GateContext, staleAfterMs: number, workerNamespace: string | null, clockOffsetOf: (beat: number) => number | null): void {
  const timestamp = typeof heartbeat.timestamp === 'string' ? heartbeat.timestamp : null;
  const beat = timestamp ? Date.parse(timestamp) : Number.NaN;
  if (Number.isNaN(beat)) {
    scan.malformed.push(id);
    return;
  }
  if (context.now.getTime() - beat > staleAfterMs) {
    scan.dead.push(id);
    return;
  }
  if (workerNamespace !== null && typeof heartbeat.namespace === 'string' && heartbeat.namespace !== workerNamespace) {
    scan.otherNamespace.push(id);
    return;
  }
  const extras = heartbeat.extras ?? {};
  const host = typeof extras.host === 'string' ? extras.host : typeof extras.hostname === 'string' ? extras.hostname : null;
  scan.live.push({ workerId: id, host, pid: typeof extras.pid === 'number' ? extras.pid : null, startedAt: typeof extras.startedAt === 'string' ? extras.startedAt : null, timestamp, clockOffsetMs: clockOffsetOf(beat) });
}

/**
 * Reads `<ns>:worker:heartbeats` and each worker's heartbeat JSON and remaining TTL from the backend
 * DB, with Redis TIME, in one pipeline (so all replies share one Redis instant).
 */
async function scanRedisHeartbeats(backend: Redis, context: GateContext, signals: StemSignals, staleAfterMs: number): Promise<HeartbeatScan> {
  const evaluationStarted = performance.now();
  const keys = stemKeys(signals.backendNamespace ?? signals.namespace);
  const ids = (await backend.smembers(keys.heartbeatSet)).sort();
  const pipeline = backend.pipeline();
  pipeline.time();
  for (const id of ids) pipeline.get(keys.heartbeat(id)).pttl(keys.heartbeat(id));
  const sent = performance.now();
  const replies = (await pipeline.exec()) ?? [];
  const received = performance.now();
  const [timeError, time] = replies[0] ?? [new Error('no reply'), null];
  const redisNowMs = timeError || !Array.isArray(time) ? null : Number(time[0]) * 1000 + Number(time[1]) / 1000;
  // context.now was taken as the evaluation began; Redis answered somewhere between send and receive.
  const rotorClock =
    redisNowMs === null ? null : { offsetMs: context.now.getTime() + (sent + received) / 2 - evaluationStarted - redisNowMs, uncertaintyMs: (received - sent) / 2 + (sent - evaluationStarted) + 1 };
  const ttl = signals.heartbeatTtl;
  // A remaining TTL above the configured one means Stem's heartbeatTtl is longer than stem-rotor
  // thinks: every offset would be off by the difference, so none is trusted.
  const ttlMismatch = ids.some((_, index) => Number((replies[2 + index * 2] ?? [null, -2])[1]) > ttl);
  const scan: HeartbeatScan = { live: [], dead: [], malformed: [], otherNamespace: [], rotorClock, heartbeatTtlMismatch: ttlMismatch, clocksMeasurable: true };
  ids.forEach((id, index) => {
    const [error, value] = replies[1 + index * 2] ?? [new Error('no reply'), null];
    const [, remaining] = replies[2 + index * 2] ?? [null, -2];
    if (error) throw error;
    if (value === null) {
      scan.dead.push(id);
      return;
    }
    let heartbeat: HeartbeatJson;
    try {
      heartbeat = JSON.parse(String(value));
    } catch {
      scan.malformed.push(id);
      return;
    }
    const pttl = Number(remaining);
    classifyHeartbeat(scan, id, heartbeat, context, staleAfterMs, signals.workerNamespace, (beat) => (redisNowMs !== null && !ttlMismatch && pttl > 0 ? beat - (redisNowMs - (ttl - pttl)) : null));
  });
  return scan;
}

/**
 * Live rows of `stem_worker_heartbeats` (§5.3). Their namespace is the backend's (the heartbeat's own
 * is replaced), and `expires_at` is stamped by the worker's clock, so no offset can be measured: the
 * configured clockSkew applies.
 */
async function scanSqlHeartbeats(sql: SqlClient, context: GateContext, signals: StemSignals, staleAfterMs: number): Promise<HeartbeatScan> {
  const rows = await sqlHeartbeats(sql, signals.backendNamespace ?? signals.namespace);
  const scan: HeartbeatScan = { live: [], dead: [], malformed: [], otherNamespace: [], rotorClock: null, heartbeatTtlMismatch: false, clocksMeasurable: false };
  for (const row of rows) {
    if (row.heartbeat.extras === undefined) scan.malformed.push(row.workerId);
    else classifyHeartbeat(scan, row.workerId, row.heartbeat as HeartbeatJson, context, staleAfterMs, null, () => null);
  }
  return scan;
}

export async function scanHeartbeats(context: GateContext, staleAfterMs: number): Promise<HeartbeatScan> {
  const stem = requireStem(context);
  const backend = await stem.backend();
  return backend.kind === 'redis' ? scanRedisHeartbeats(backend.redis, context, stem.signals, staleAfterMs) : scanSqlHeartbeats(backend.sql, context, stem.signals, staleAfterMs);
}

type Restart = { readonly kind: 'restarted' } | { readonly kind: 'before' } | { readonly kind: 'uncertain'; readonly afterMs: number; readonly uncertaintyMs: number };

/**
 * Did this worker start after the write (plus the start-up allowance)? Both times are moved onto
 * Redis's clock with the measured offsets; a start inside the measurement's uncertainty is said to
 * be exactly that, never counted as a restart.
 */
function restartOf(worker: WorkerHeartbeat, verifiedMs: number, scan: HeartbeatScan, options: StemWorkersOptions): Restart {
  const started = worker.startedAt ? Date.parse(worker.startedAt) : Number.NaN;
  if (Number.isNaN(started)) return { kind: 'before' };
  if (worker.clockOffsetMs === null || scan.rotorClock === null) {
    // Unmeasured clocks may differ by clockSkew either way: a start within it is unproven, not stale.
    const afterMs = started - verifiedMs;
    if (afterMs - options.startupAllowanceMs > options.clockSkewMs) return { kind: 'restarted' };
    return afterMs > -options.clockSkewMs ? { kind: 'uncertain', afterMs, uncertaintyMs: options.clockSkewMs } : { kind: 'before' };
  }
  const afterMs = started - worker.clockOffsetMs - (verifiedMs - scan.rotorClock.offsetMs);
  const uncertaintyMs = Math.ceil(scan.rotorClock.uncertaintyMs + HEARTBEAT_WRITE_ALLOWANCE_MS + 1);
  if (afterMs - options.startupAllowanceMs > uncertaintyMs) return { kind: 'restarted' };
  if (afterMs <= -uncertaintyMs) return { kind: 'before' };
  return { kind: 'uncertain', afterMs, uncertaintyMs };
}

function describe(worker: WorkerHeartbeat): string {
  return `${worker.workerId} (host ${worker.host ?? '?'}, pid ${worker.pid ?? '?'}, started ${worker.startedAt ?? 'unknown'})`;
}

export function createStemWorkersGate(options: StemWorkersOptions): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const verdict = verdictOf(options.name);
      const times = phaseTimes(context);
      if (!times) return verdict('unknown', 'no verified write time for the current phase');
      const scan = await scanHeartbeats(context, options.staleAfterMs);
      const verifiedMs = times.verified.getTime();
      const restarts = scan.live.map((worker) => ({ worker, restart: restartOf(worker, verifiedMs, scan, options) }));
      const stale = restarts.filter((entry) => entry.restart.kind === 'before').map((entry) => entry.worker);
      const uncertain = restarts.flatMap((entry) => (entry.restart.kind === 'uncertain' ? [{ worker: entry.worker, ...entry.restart }] : []));
      const evidence = {
        writeVerifiedAt: times.verified.toISOString(),
        live: scan.live.length,
        restarted: scan.live.length - stale.length - uncertain.length,
        notRestarted: stale.map((worker) => ({ ...worker })),
        cannotProve: uncertain.map(({ worker, afterMs, uncertaintyMs }) => ({ ...worker, startedAfterWriteMs: Math.round(afterMs), uncertaintyMs })),
        rotorClockOffsetMs: scan.rotorClock ? Math.round(scan.rotorClock.offsetMs) : null,
        ...(scan.clocksMeasurable ? {} : { clocks: `not measurable on this backend: clockSkew ${options.clockSkewMs}ms is assumed` }),
        ...(scan.heartbeatTtlMismatch ? { heartbeatTtlMismatch: `a heartbeat's remaining TTL exceeds stem.heartbeatTtl (${formatDuration(requireStem(context).signals.heartbeatTtl)}); set it to Stem's heartbeatTtl — until then clocks are not measured and clockSkew applies` } : {}),
        startupAllowanceMs: options.startupAllowanceMs,
        dead: scan.dead,
        otherNamespace: scan.otherNamespace,
        malformed: scan.malformed,
      };
      if (scan.malformed.length > 0) return verdict('unknown', `unreadable heartbeats from ${scan.malformed.join(', ')}`, evidence);
      if (scan.live.length === 0) {
        const signals = requireStem(context).signals;
        const others = scan.otherNamespace.length > 0 ? ` (${scan.otherNamespace.length} heartbeats belong to other worker namespaces: ${scan.otherNamespace.join(', ')})` : '';
        const where = scan.clocksMeasurable ? `in worker namespace "${signals.workerNamespace}" under ${signals.backendNamespace ?? signals.namespace}:worker:heartbeats` : `in stem_worker_heartbeats (namespace "${signals.backendNamespace ?? signals.namespace}", expires_at in the future)`;
        return verdict('unknown', `no live worker heartbeats ${where}${others}`, evidence);
      }
      const unmeasured = scan.heartbeatTtlMismatch
        ? ` (clocks not measured, clockSkew ${options.clockSkewMs}ms assumed: a heartbeat's remaining TTL exceeds stem.heartbeatTtl — set it to Stem's heartbeatTtl)`
        : scan.clocksMeasurable
          ? ''
          : ` (worker clocks cannot be measured on this backend: clockSkew ${options.clockSkewMs}ms assumed)`;
      if (stale.length > 0) {
        return verdict('wait', `${stale.length} of ${scan.live.length} live workers have not restarted since ${times.verified.toISOString()}: ${stale.map(describe).join('; ')}${unmeasured}`, evidence);
      }
      if (uncertain.length > 0) {
        const ring = context.ring.name;
        const described = uncertain.map(({ worker, afterMs, uncertaintyMs }) => `${describe(worker)} ${afterMs >= 0 ? `restarted ${Math.round(afterMs)}ms after` : `started ${Math.round(-afterMs)}ms before`} the write, within the start-up allowance (${options.startupAllowanceMs}ms) plus clock uncertainty (${uncertaintyMs}ms)`);
        return verdict(
          'wait',
          `cannot prove ${uncertain.length} of ${scan.live.length} live workers loaded the new file: ${described.join('; ')}${unmeasured}. Restart them once more, or, if you know they read it: stem-rotor rotate advance ${ring} --override ${options.name} --reason "…"`,
          evidence,
        );
      }
      if (scan.live.length < options.minWorkers) {
        return verdict('wait', `only ${scan.live.length} live workers, need at least ${options.minWorkers}`, evidence);
      }
      return verdict('pass', `all ${scan.live.length} live workers restarted after the write (verified ${formatDuration(context.now.getTime() - times.verified.getTime())} ago)`, evidence);
    },
  };
}

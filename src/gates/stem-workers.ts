/**
 * `stem-workers`: every live Stem worker restarted after the phase's write was verified (Stem reads
 * its keys once, at start). Live = heartbeat key present and fresh (stem-interop §4). No heartbeat
 * data is `unknown`, never a pass.
 */
import { formatDuration } from '../config/duration.js';
import { stemKeys } from '../stem/redis-keys.js';
import { phaseTimes, requireRedis, type Gate, type GateContext, verdictOf, type GateResult } from './types.js';

export const GATE_TYPE = 'stem-workers';

export interface StemWorkersOptions {
  readonly name: string;
  readonly minWorkers: number;
  /** Heartbeats older than this are dead workers. */
  readonly staleAfterMs: number;
  readonly clockSkewMs: number;
}

export interface WorkerHeartbeat {
  readonly workerId: string;
  readonly host: string | null;
  readonly pid: number | null;
  readonly startedAt: string | null;
  readonly timestamp: string | null;
}

export interface HeartbeatScan {
  readonly live: WorkerHeartbeat[];
  readonly dead: string[];
  readonly malformed: string[];
  /** Live heartbeats of workers in another worker namespace (not this ring's fleet). */
  readonly otherNamespace: string[];
}

/** Reads `<ns>:worker:heartbeats` and each worker's heartbeat JSON from the backend DB, pipelined. */
export async function scanHeartbeats(context: GateContext, staleAfterMs: number): Promise<HeartbeatScan> {
  const redis = requireRedis(context);
  const keys = stemKeys(redis.signals.backendNamespace ?? redis.signals.namespace);
  const backend = await redis.backend();
  const ids = (await backend.smembers(keys.heartbeatSet)).sort();
  const pipeline = backend.pipeline();
  for (const id of ids) pipeline.get(keys.heartbeat(id));
  const replies = ids.length === 0 ? [] : ((await pipeline.exec()) ?? []);
  const scan: HeartbeatScan = { live: [], dead: [], malformed: [], otherNamespace: [] };
  ids.forEach((id, index) => {
    const [error, value] = replies[index] ?? [new Error('no reply'), null];
    if (error) throw error;
    if (value === null) {
      scan.dead.push(id);
      return;
    }
    let heartbeat: { namespace?: unknown; timestamp?: unknown; extras?: { startedAt?: unknown; host?: unknown; hostname?: unknown; pid?: unknown } };
    try {
      heartbeat = JSON.parse(String(value));
    } catch {
      scan.malformed.push(id);
      return;
    }
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
    if (typeof heartbeat.namespace === 'string' && heartbeat.namespace !== redis.signals.workerNamespace) {
      scan.otherNamespace.push(id);
      return;
    }
    const extras = heartbeat.extras ?? {};
    const host = typeof extras.host === 'string' ? extras.host : typeof extras.hostname === 'string' ? extras.hostname : null;
    scan.live.push({ workerId: id, host, pid: typeof extras.pid === 'number' ? extras.pid : null, startedAt: typeof extras.startedAt === 'string' ? extras.startedAt : null, timestamp });
  });
  return scan;
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
      const threshold = times.verified.getTime() + options.clockSkewMs;
      const stale = scan.live.filter((worker) => {
        const started = worker.startedAt ? Date.parse(worker.startedAt) : Number.NaN;
        return Number.isNaN(started) || started <= threshold;
      });
      const evidence = {
        writeVerifiedAt: times.verified.toISOString(),
        live: scan.live.length,
        restarted: scan.live.length - stale.length,
        notRestarted: stale.map((worker) => ({ ...worker })),
        dead: scan.dead,
        otherNamespace: scan.otherNamespace,
        malformed: scan.malformed,
      };
      if (scan.malformed.length > 0) return verdict('unknown', `unreadable heartbeats from ${scan.malformed.join(', ')}`, evidence);
      if (scan.live.length === 0) {
        const signals = requireRedis(context).signals;
        const others = scan.otherNamespace.length > 0 ? ` (${scan.otherNamespace.length} heartbeats belong to other worker namespaces: ${scan.otherNamespace.join(', ')})` : '';
        return verdict('unknown', `no live worker heartbeats in worker namespace "${signals.workerNamespace}" under ${signals.backendNamespace ?? signals.namespace}:worker:heartbeats${others}`, evidence);
      }
      if (stale.length > 0) {
        return verdict('wait', `${stale.length} of ${scan.live.length} live workers have not restarted since ${times.verified.toISOString()}: ${stale.map(describe).join('; ')}`, evidence);
      }
      if (scan.live.length < options.minWorkers) {
        return verdict('wait', `only ${scan.live.length} live workers, need at least ${options.minWorkers}`, evidence);
      }
      return verdict('pass', `all ${scan.live.length} live workers restarted after the write (verified ${formatDuration(context.now.getTime() - times.verified.getTime())} ago)`, evidence);
    },
  };
}

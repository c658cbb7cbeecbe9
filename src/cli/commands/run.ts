import { formatDuration, parseDuration } from '../../duration.js';
import { ConfigError, ExitCode, LeaseHeldError, isRotorError } from '../../errors.js';
import type { StepResult } from '../../engine/engine.js';
import { createContext, print, type CommonOptions } from '../context.js';
import type { StatusReport } from '../../engine/status.js';
import type { RingState } from '../../core/types.js';
import { createLog, type Log } from '../log.js';
import { formatStep } from './format.js';
import type { RotorMetrics } from '../metrics.js';

export interface RunOptions extends CommonOptions {
  readonly once?: boolean;
  readonly interval?: string;
  readonly listen?: string;
  /** After each pass: node_exporter textfile. */
  readonly metricsFile?: string;
  /** After each pass: push to this Pushgateway. */
  readonly pushgateway?: string;
}

type RingOutcome = StepResult | { ring: string; outcome: 'skipped' | 'failed'; message: string; exitCode?: number };

interface Pass {
  readonly outcomes: RingOutcome[];
  readonly statuses: StatusReport[];
}

const PRELOAD_BATCH = 500;

async function runPass(options: RunOptions, log: Log, shouldStop: () => boolean, withStatus: boolean): Promise<Pass> {
  const context = await createContext(options, log);
  const outcomes: RingOutcome[] = [];
  const statuses: StatusReport[] = [];
  let preloaded: ReadonlyMap<string, RingState | null> = new Map();
  for (const [index, ring] of context.config.rings.entries()) {
    if (shouldStop()) break;
    if (index % PRELOAD_BATCH === 0 && context.store.loadMany) {
      // States in batches (one round trip each, not one per ring); each read just before its rings run.
      preloaded = await context.store.loadMany(context.config.rings.slice(index, index + PRELOAD_BATCH).map((r) => r.name));
    }
    try {
      outcomes.push(await context.engine(ring.name).runOnce(preloaded.get(ring.name)));
    } catch (error) {
      if (error instanceof LeaseHeldError) {
        outcomes.push({ ring: ring.name, outcome: 'skipped', message: error.message });
        continue;
      }
      if (!isRotorError(error)) throw error;
      log.warn(`${ring.name}: ${error.message}`, { ring: ring.name, code: error.code });
      outcomes.push({ ring: ring.name, outcome: 'failed', message: error.message, exitCode: error.exitCode });
    }
    if (withStatus) statuses.push(await context.engine(ring.name).status().catch(() => null as never));
  }
  await context.close();
  return { outcomes, statuses: statuses.filter(Boolean) };
}

/** /healthz: the store answers, and Stem's Redis answers for every ring that reads it. */
async function health(options: RunOptions): Promise<{ ok: boolean; detail: string }> {
  const context = await createContext(options);
  try {
    const first = context.config.rings[0];
    if (first) await context.store.load(first.name);
    const { StemSources } = await import('../../stem/sources.js');
    for (const ring of context.config.rings) {
      if (!ring.stem) continue;
      const stem = new StemSources(ring.stem);
      try {
        await stem.ping();
      } finally {
        await stem.close();
      }
    }
    return { ok: true, detail: `store and signal sources of ${context.config.rings.length} ring${context.config.rings.length === 1 ? '' : 's'} reachable` };
  } finally {
    await context.close();
  }
}

/**
 * The scheduled job. A failed ring does not stop the others; the exit code reports the worst.
 * With --interval it is a daemon: SIGTERM/SIGINT finish the ring in progress (its write and lease
 * release) and exit 0; --listen serves /metrics and /healthz.
 */
export async function runCommand(options: RunOptions): Promise<number> {
  if (options.once && options.interval) throw new ConfigError('use either --once or --interval DUR');
  if (options.listen && !options.interval) throw new ConfigError('--listen needs --interval (it serves the daemon)');
  if (options.listen && !/^([\w.-]*|\[[\d:a-f]+\]):\d{1,5}$/i.test(options.listen)) throw new ConfigError(`--listen ${options.listen}: expected HOST:PORT or :PORT`);
  const intervalMs = options.interval === undefined ? undefined : parseDuration(options.interval);
  if (options.interval !== undefined && (intervalMs === undefined || intervalMs < 1000)) {
    throw new ConfigError(`--interval ${options.interval}: expected a duration of at least 1s, like 5m`);
  }
  const log = await createLog();
  let stopping = false;
  let wake: (() => void) | null = null;
  const stop = (signal: string) => {
    if (!stopping) log.info(`${signal}: finishing the ring in progress, then exiting`);
    stopping = true;
    wake?.();
  };
  if (intervalMs !== undefined) {
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }
  const exporting = options.listen !== undefined || options.metricsFile !== undefined || options.pushgateway !== undefined;
  const exporter = exporting ? await import('../metrics.js') : null;
  const metrics = exporter?.createRotorMetrics() ?? null;
  const server = exporter && metrics && options.listen ? await exporter.serveMetrics(options.listen, metrics, () => health(options)) : null;
  if (server) log.info(`serving /metrics and /healthz on http://${server.address}`);
  try {
    for (;;) {
      const { outcomes, statuses } = await runPass(options, log, () => stopping, metrics !== null);
      let exportFailed = false;
      if (exporter && metrics) {
        metrics.recordPass(outcomes.map((o) => ({ ring: o.ring, outcome: o.outcome, writes: 'writes' in o ? o.writes.filter((w) => 'status' in w && w.status === 'verified').length : 0 })), statuses, new Date());
        exportFailed = !(await exportPass(exporter, metrics, options, log));
      }
      print(options, outcomes, () => outcomes.map((o) => ('action' in o ? formatStep(o) : `${o.ring}: ${o.outcome}: ${o.message}`)).join('\n'));
      // A stuck rotation is not silent: exit 3 (blocked) even though waiting is normal for `run`;
      // nor is a pass whose metrics went nowhere (exit 1): a blind monitor is how a dead job goes unnoticed.
      const worst = Math.max(exportFailed ? ExitCode.failure : 0, ...outcomes.map((o) => ('exitCode' in o && o.exitCode !== undefined ? o.exitCode : o.outcome === 'stuck' ? ExitCode.blocked : 0)));
      if (intervalMs === undefined) return worst;
      if (stopping) return 0;
      log.info(`next pass in ${formatDuration(intervalMs)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
      if (stopping) return 0;
    }
  } finally {
    await server?.close();
  }
}

/** Writes the metrics file and pushes to the Pushgateway, as asked; a failure is logged, never thrown. */
async function exportPass(exporter: typeof import('../metrics.js'), metrics: RotorMetrics, options: RunOptions, log: Log): Promise<boolean> {
  let ok = true;
  const attempts: [string | undefined, (target: string) => Promise<void>][] = [
    [options.metricsFile, (path) => exporter.writeMetricsFile(path, metrics)],
    [options.pushgateway, (url) => exporter.pushMetrics(url, metrics)],
  ];
  for (const [target, send] of attempts) {
    if (target === undefined) continue;
    await send(target).catch((error: Error) => {
      ok = false;
      log.warn(`metrics not exported: ${error.message}`, { target });
    });
  }
  return ok;
}

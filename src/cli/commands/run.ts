import { formatDuration, parseDuration } from '../../config/duration.js';
import { ConfigError, ExitCode, LeaseHeldError, isRotorError } from '../../errors.js';
import type { StepResult } from '../../engine/engine.js';
import { systemClock } from '../../clock.js';
import { createContext, print, type CommonOptions } from '../context.js';
import { createLog } from '../log.js';
import { formatStep } from './format.js';

export interface RunOptions extends CommonOptions {
  readonly once?: boolean;
  readonly interval?: string;
}

type RingOutcome = StepResult | { ring: string; outcome: 'skipped' | 'failed'; message: string; exitCode?: number };

async function runPass(options: RunOptions): Promise<RingOutcome[]> {
  const log = await createLog();
  const context = await createContext(options, log);
  const outcomes: RingOutcome[] = [];
  for (const ring of context.config.rings) {
    try {
      outcomes.push(await context.engine(ring.name).runOnce());
    } catch (error) {
      if (error instanceof LeaseHeldError) {
        outcomes.push({ ring: ring.name, outcome: 'skipped', message: error.message });
        continue;
      }
      if (!isRotorError(error)) throw error;
      log.warn(`${ring.name}: ${error.message}`, { ring: ring.name, code: error.code });
      outcomes.push({ ring: ring.name, outcome: 'failed', message: error.message, exitCode: error.exitCode });
    }
  }
  return outcomes;
}

/** The scheduled job. A failed ring does not stop the others; the exit code reports the worst. */
export async function runCommand(options: RunOptions): Promise<number> {
  if (options.once && options.interval) throw new ConfigError('use either --once or --interval DUR');
  const intervalMs = options.interval === undefined ? undefined : parseDuration(options.interval);
  if (options.interval !== undefined && (intervalMs === undefined || intervalMs < 1000)) {
    throw new ConfigError(`--interval ${options.interval}: expected a duration of at least 1s, like 5m`);
  }
  for (;;) {
    const outcomes = await runPass(options);
    print(options, outcomes, () => outcomes.map((o) => ('action' in o ? formatStep(o) : `${o.ring}: ${o.outcome}: ${o.message}`)).join('\n'));
    // A stuck rotation is not silent: exit 3 (blocked) even though waiting is normal for `run`.
    const worst = Math.max(0, ...outcomes.map((o) => ('exitCode' in o && o.exitCode !== undefined ? o.exitCode : o.outcome === 'stuck' ? ExitCode.blocked : 0)));
    if (intervalMs === undefined) return worst;
    process.stderr.write(`next pass in ${formatDuration(intervalMs)}\n`);
    await systemClock.sleep(intervalMs);
  }
}

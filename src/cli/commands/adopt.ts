import { adoptRing, reconcileRing } from '../../engine/adopt.js';
import { ConfigError } from '../../errors.js';
import { createContext, print, type CommonOptions } from '../context.js';
import { createLog } from '../log.js';

export async function adoptCommand(ring: string, options: CommonOptions & { readonly created?: string }): Promise<void> {
  let created: Date | undefined;
  if (options.created !== undefined) {
    created = new Date(options.created);
    if (Number.isNaN(created.getTime())) throw new ConfigError(`--created ${options.created}: expected a date (2024-03-01) or an ISO time`);
  }
  const context = await createContext(options, await createLog());
  const report = await adoptRing(context.engine(ring), created ? { created } : {});
  print(options, report, () => [report.message, ...report.keys.map((key) => `  ${key.active ? '*' : ' '} ${key.id} ${key.fingerprint} created ${key.createdAt} (from ${key.source})`)].join('\n'));
}

export async function reconcileCommand(ring: string, options: CommonOptions & { readonly yes?: boolean; readonly reason?: string; readonly force?: boolean }): Promise<number> {
  const context = await createContext(options, await createLog());
  const report = await reconcileRing(context.engine(ring), { apply: options.yes ?? false, force: options.force ?? false, ...(options.reason ? { reason: options.reason } : {}) });
  print(options, report, () => [...report.differences.map((line) => `  ${line}`), report.message].join('\n'));
  // a difference left in place is not success: scripts can tell drift from agreement
  return report.differences.length > 0 && !report.applied ? 1 : 0;
}

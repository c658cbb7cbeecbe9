import { createContext, print, type CommonOptions } from '../context.js';
import { formatStatus } from './format.js';

export async function statusCommand(ring: string | undefined, options: CommonOptions): Promise<void> {
  const context = await createContext(options);
  const names = ring === undefined ? context.config.rings.map((r) => r.name) : [ring];
  const reports = await Promise.all(names.map((name) => context.engine(name).status()));
  print(options, ring === undefined ? reports : reports[0], () => reports.map(formatStatus).join('\n\n'));
}

import { ConfigError } from '../../errors.js';
import type { Override, StepOptions } from '../../engine/engine.js';
import { createContext, print, type CommonOptions } from '../context.js';
import { createLog } from '../log.js';
import { formatStep } from './format.js';

export interface RotateOptions extends CommonOptions {
  readonly dryRun?: boolean;
  readonly approve?: boolean;
  readonly override?: string[];
  readonly reason?: string;
}

export function stepOptions(options: RotateOptions): StepOptions {
  const gates = options.override ?? [];
  if (gates.length > 0 && !options.reason?.trim()) throw new ConfigError('--override needs --reason TEXT (overrides are audited)');
  const overrides: Override[] = gates.map((gate) => ({ gate, reason: (options.reason as string).trim() }));
  return {
    dryRun: options.dryRun ?? false,
    approve: options.approve ?? false,
    overrides,
    ...(options.reason?.trim() ? { reason: options.reason.trim() } : {}),
  };
}

export async function rotateCommand(step: 'start' | 'advance' | 'abort', ring: string, options: RotateOptions): Promise<void> {
  const settings = stepOptions(options);
  const context = await createContext(options, await createLog());
  const engine = context.engine(ring);
  const result = await engine[step](settings);
  print(options, result, () => formatStep(result));
}

import { readFileSync, writeFileSync } from 'node:fs';
import { openPlan, type SavedPlan } from '../../core/saved-plan.js';
import { ConfigError, asIoError } from '../../errors.js';
import type { Override, StepOptions } from '../../engine/engine.js';
import { createContext, print, type CommonOptions } from '../context.js';
import { createLog } from '../log.js';
import { formatStep } from './format.js';

export interface RotateOptions extends CommonOptions {
  readonly dryRun?: boolean;
  readonly out?: string;
  readonly plan?: string;
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

/** A saved plan from `--plan FILE`: a missing file is one line, an edited or foreign one exit 2. */
function readPlan(path: string): SavedPlan {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw asIoError(error, 'read the plan', path);
  }
  const plan = openPlan(text);
  if (typeof plan === 'string') throw new ConfigError(`--plan ${path}: ${plan}`);
  return plan;
}

/** `--plan` carries its own decisions: overrides, approval and reason come from the plan. */
function planOptions(options: RotateOptions): StepOptions {
  if (options.dryRun || options.out) throw new ConfigError('--plan applies a saved plan; it goes without --dry-run and --out');
  if ((options.override ?? []).length > 0 || options.approve || options.reason) throw new ConfigError('--plan carries the overrides, approval and reason it was made with; drop --override, --approve and --reason');
  const plan = readPlan(options.plan as string);
  const overrides = plan.gates.flatMap((gate) => (gate.overridden ? [{ gate: gate.name, reason: gate.overridden.reason }] : []));
  return { plan, approve: plan.approved, overrides, ...(plan.reason ? { reason: plan.reason } : {}) };
}

export async function rotateCommand(step: 'start' | 'advance' | 'abort', ring: string, options: RotateOptions): Promise<void> {
  if (options.out && !options.dryRun) throw new ConfigError('--out saves the plan of a dry run: add --dry-run');
  const settings = options.plan ? planOptions(options) : stepOptions(options);
  const context = await createContext(options, await createLog());
  const engine = context.engine(ring);
  const result = await engine[step](settings);
  if (options.out && result.plan) {
    try {
      writeFileSync(options.out, `${JSON.stringify(result.plan, null, 2)}\n`, { mode: 0o600 });
    } catch (error) {
      throw asIoError(error, 'write the plan', options.out);
    }
  }
  print(options, result, () => `${formatStep(result)}${options.out && result.plan ? `\nplan saved to ${options.out}; apply exactly it with: stem-rotor rotate ${step} ${ring} --plan ${options.out}` : ''}`);
}

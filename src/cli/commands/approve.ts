import { hostname } from 'node:os';
import { ConfigError } from '../../errors.js';
import { createContext, print, type CommonOptions } from '../context.js';
import { createLog } from '../log.js';
import { formatStep } from './format.js';

export interface ApproveOptions extends CommonOptions {
  readonly reason?: string;
  /** Who approves, for automation (else STEM_ROTOR_ACTOR, else the OS user). */
  readonly as?: string;
}

/** `approve` records an approval of the ring's next step; `deny` records a refusal and aborts the rotation. */
export async function approveCommand(decision: 'approve' | 'deny', ring: string, options: ApproveOptions): Promise<void> {
  const reason = options.reason?.trim();
  if (!reason) throw new ConfigError(`${decision} needs --reason TEXT (it is audited)`);
  const as = options.as?.trim();
  if (options.as !== undefined && !as) throw new ConfigError('--as needs a name');
  const context = await createContext(options, await createLog());
  const engine = context.engine(ring, as ? { user: as, host: hostname() } : undefined);
  const result = decision === 'approve' ? await engine.approve(reason) : await engine.deny(reason);
  print(options, result, () => formatStep(result));
}

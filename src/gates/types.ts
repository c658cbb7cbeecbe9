/**
 * The gate contract: read-only evidence → a verdict. `pass` lets the step happen; `wait` means not
 * yet (with why); `unknown` means the evidence is missing, stale or unreachable — it blocks like
 * `wait` (S6, fail closed). Gates never write.
 */
import type { RingConfig } from '../config/schema.js';
import type { GateSlot } from '../core/machine.js';
import type { GateOutcome, RingState } from '../core/types.js';

export interface GateContext {
  readonly ring: RingConfig;
  readonly state: RingState;
  readonly slot: GateSlot;
  readonly now: Date;
  /** The operator passed `--approve` to this command. */
  readonly approved: boolean;
}

export interface GateResult extends GateOutcome {
  /** What the verdict rests on: counts, times, ids. Never key material. */
  readonly evidence?: Readonly<Record<string, unknown>>;
}

export interface Gate {
  readonly name: string;
  evaluate(context: GateContext): Promise<GateResult>;
}

/** What the engine's callers pass in and get back: dependencies, step options, results. */
import { hostname, userInfo } from 'node:os';
import type { Provider, ProviderNotice } from '../../providers/types.js';
import type { Clock } from '../clock.js';
import type { TargetConfig } from '../config/schema.js';
import type { SavedPlan } from '../core/saved-plan.js';
import type { Actor, Transition, WriteRecord } from '../core/types.js';
import type { GateResult } from '../gates/index.js';
import type { RandomBytes } from '../stem/keys.js';
import type { StateStore } from '../store/types.js';
import type { Notify } from '../notify/index.js';

export type { Actor } from '../core/types.js';

/** The OS user, unless automation names itself with STEM_ROTOR_ACTOR (e.g. `rotor-cronjob`). */
export function currentActor(): Actor {
  const named = process.env.STEM_ROTOR_ACTOR?.trim();
  if (named) return { user: named, host: hostname() };
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return { user, host: hostname() };
}

export interface EngineDeps {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly randomBytes?: RandomBytes;
  readonly actor?: Actor;
  readonly providerFor?: (target: TargetConfig, notice?: ProviderNotice) => Promise<Provider>;
  /** Progress lines (one per target write); never given key material. */
  readonly progress?: (line: string) => void;
  /** @default 300_000 */
  readonly leaseTtlMs?: number;
  /** Delivers notifications (`notify:` sinks); returns the sinks that failed. */
  readonly notify?: Notify;
  /** Compare-and-set retries per target after a concurrent change. @default 3 */
  readonly casRetries?: number;
}

export interface Override {
  readonly gate: string;
  readonly reason: string;
}

export interface StepOptions {
  readonly dryRun?: boolean;
  /** Apply exactly this saved plan (`--plan`), or refuse naming what changed since. */
  readonly plan?: SavedPlan;
  readonly approve?: boolean;
  readonly overrides?: readonly Override[];
  readonly reason?: string;
}

export interface PlannedWrite {
  readonly target: string;
  readonly audience: string;
  readonly location: string;
  readonly fields: readonly string[];
  readonly before: { readonly keyIds: readonly string[]; readonly activeKeyId: string | null };
  readonly after: { readonly keyIds: readonly string[]; readonly activeKeyId: string | null };
  readonly change: boolean;
}

export interface StepResult {
  readonly ring: string;
  readonly action: string;
  readonly outcome: 'done' | 'resumed' | 'planned' | 'blocked' | 'stuck' | 'noop';
  readonly phase: string;
  readonly transition?: { readonly kind: string; readonly from: Transition['from']; readonly desired: Transition['desired'] };
  readonly gates: readonly GateResult[];
  readonly writes: readonly (WriteRecord | PlannedWrite)[];
  readonly message: string;
  readonly newKey?: { readonly id: string; readonly fingerprint: string | null };
  /** A dry run's plan, to save with `--out` and apply with `--plan`. */
  readonly plan?: SavedPlan;
}

/** The ids a step's transition gets: fresh, or a saved plan's. */
export interface StepIds {
  readonly transitionId: string;
  readonly rotationId: string;
  readonly newKeyId: () => string;
}

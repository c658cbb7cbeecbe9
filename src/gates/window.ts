/**
 * `window` (built in, when a ring configures `policy.windows` or `policy.freeze`): the next step
 * waits outside its change window and during a freeze. Finishing an abort never waits.
 */
import { WINDOW_GATE } from '../config/schema.js';
import type { ChangeWindow, Freeze } from '../core/windows.js';
import { formatDuration } from '../duration.js';
import { verdictOf, type Gate, type GateContext, type GateResult } from './types.js';

export type WindowStep = 'start' | 'activate' | 'drop';

export interface WindowGateOptions {
  readonly step: WindowStep;
  readonly window?: ChangeWindow;
  readonly freeze: readonly Freeze[];
}

export function createWindowGate(options: WindowGateOptions): Gate {
  const verdict = verdictOf(WINDOW_GATE);
  const { step, window } = options;
  return {
    name: WINDOW_GATE,
    async evaluate(context: GateContext): Promise<GateResult> {
      if (step === 'drop' && context.state.rotation?.phase === 'rolling-back') return verdict('pass', 'finishing an abort is never held by a window or a freeze');
      const { activeFreeze, localTime, windowState } = await import('../core/windows.js');
      const frozen = activeFreeze(options.freeze, context.now);
      if (frozen) {
        const why = frozen.freeze.reason ? ` (${frozen.freeze.reason})` : '';
        return verdict('wait', `frozen until ${localTime(frozen.until, frozen.freeze.timezone)}${why}: the ${step} waits`, { frozenUntil: frozen.until.toISOString() });
      }
      if (!window) return verdict('pass', 'no freeze in force');
      const state = windowState(window, context.now);
      const described = `the ${step} window ("${window.cron}" ${window.timezone}, open ${formatDuration(window.duration)})`;
      if (!state.open) return verdict('wait', `outside ${described}; it opens next at ${localTime(state.opensAt, window.timezone)}`, { opensAt: state.opensAt.toISOString() });
      return verdict('pass', `inside ${described} until ${localTime(state.closesAt, window.timezone)}`, { closesAt: state.closesAt.toISOString() });
    },
  };
}

/**
 * `stem-dlq`: no signature-invalid dead letters since the phase's write began that point at this
 * ring (stem-interop §3). What blocks is configurable by error class; broker-mutated mismatches
 * (attempt > 0 or notBefore set) are reported as not caused by the rotation.
 */
import type { DlqClass } from '../stem/dead-letters.js';
import { groupDeadLetters, scanStemDeadLetters } from '../stem/dead-letters.js';
import { phaseTimes, requireStem, type Gate, type GateContext, verdictOf, type GateResult } from './types.js';

export const GATE_TYPE = 'stem-dlq';

export interface StemDlqOptions {
  readonly name: string;
  readonly block: readonly DlqClass[];
  readonly maxEntries: number;
  readonly clockSkewMs: number;
}

/** Every key id this ring has had: current, in rotation, revoked. */
function ringKeyIds(context: GateContext): Set<string> {
  const { state } = context;
  return new Set([...state.keys.map((key) => key.id), ...state.revokedKeyIds, ...(state.rotation ? [state.rotation.oldKeyId, state.rotation.newKeyId] : [])]);
}

export function createStemDlqGate(options: StemDlqOptions): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const result = verdictOf(options.name);
      const times = phaseTimes(context);
      if (!times) return result('unknown', 'no write time for the current phase');
      const stem = requireStem(context);
      // LPUSH order across workers is only roughly time order: page a little past the phase start.
      const pageUntil = new Date(times.started.getTime() - options.clockSkewMs);
      const timezone = stem.signals.timezone ?? null;
      const scan = await scanStemDeadLetters(await stem.broker(), stem.signals.namespace, { since: pageUntil, maxEntries: options.maxEntries, timezone });
      const ring = ringKeyIds(context);
      const relevant = scan.signatureInvalid.filter((letter) => letter.deadAt === null || letter.deadAt >= times.started);
      // missing-headers entries name no key; they block whatever ring they belong to.
      const blocking = relevant.filter((letter) => options.block.includes(letter.errorClass) && (letter.errorClass === 'missing-headers' || ring.has(letter.keyId)));
      const groups = groupDeadLetters(relevant);
      const evidence = {
        since: times.started.toISOString(),
        queues: scan.queues.length,
        scanned: scan.scanned,
        groups,
        blocking: blocking.length,
        notCausedByRotation: relevant.filter((letter) => letter.errorClass === 'mismatch-mutated').length,
        malformed: scan.malformed,
        truncated: scan.truncated,
        zoneLessTimes: scan.zoneLess,
      };
      const zoneNote =
        scan.zoneLess === 0
          ? ''
          : ` (${scan.zoneLess} dead letters have a deadAt without a zone, written by stem_redis 0.1.0: ${timezone ? `read in ${timezone}` : 'read as the latest instant each could mean; set stem.timezone to the workers\' zone'})`;
      if (scan.truncated) return result('unknown', `stopped after ${scan.scanned} dead letters without reaching ${times.started.toISOString()}; raise maxEntries`, evidence);
      if (scan.malformed > 0) return result('unknown', `${scan.malformed} dead letters could not be parsed; they could hide signature failures`, evidence);
      if (blocking.length > 0) {
        const top = groupDeadLetters(blocking)
          .slice(0, 5)
          .map((group) => `${group.count}× ${group.errorClass} key "${group.keyId}" on ${group.queue}`);
        return result('wait', `${blocking.length} signature-invalid dead letters since ${times.started.toISOString()}: ${top.join('; ')}${zoneNote}`, evidence);
      }
      const mutated = evidence.notCausedByRotation > 0 ? ` (${evidence.notCausedByRotation} broker-mutated "signature mismatch" entries are not caused by the rotation)` : '';
      return result('pass', `no blocking signature-invalid dead letters since ${times.started.toISOString()} across ${scan.queues.length} queues${mutated}${zoneNote}`, evidence);
    },
  };
}

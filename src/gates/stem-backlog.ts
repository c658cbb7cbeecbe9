/**
 * `stem-backlog` (before drop): no queued envelope — stream, pending or delayed — is still signed
 * with a key about to be removed. Those enqueued after the activate write are a signer that has not
 * reloaded its keys.
 */
import { countBacklog } from '../stem/backlog.js';
import { keysToDrop, phaseTimes, requireRedis, type Gate, type GateContext, verdictOf, type GateResult } from './types.js';

export const GATE_TYPE = 'stem-backlog';

/** Control queues are named by the worker namespace (stem-interop-2 §6); the CLI and dashboard default to `stem`. */
function controlNamespaces(workerNamespace: string): string[] {
  return [...new Set([workerNamespace, 'stem'])];
}

export interface StemBacklogOptions {
  readonly name: string;
  readonly batchSize: number;
}

export function createStemBacklogGate(options: StemBacklogOptions): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const result = verdictOf(options.name);
      const times = phaseTimes(context);
      const dropping = keysToDrop(context);
      if (!times || dropping.length === 0) return result('unknown', 'no key is being dropped in the current phase');
      const redis = requireRedis(context);
      const report = await countBacklog(await redis.broker(), redis.signals.broker, { namespace: redis.signals.namespace, controlNamespaces: controlNamespaces(redis.signals.workerNamespace), keyIds: dropping, after: times.verified, batchSize: options.batchSize });
      const { total } = report;
      const evidence = {
        dropping,
        activateVerifiedAt: times.verified.toISOString(),
        ...total,
        sources: report.bySource.filter((source) => source.count.signed > 0 || source.count.unparseable > 0).map((source) => ({ key: source.key, source: source.source, ...source.count })),
      };
      if (total.unparseable > 0) return result('unknown', `${total.unparseable} queued envelopes have unreadable headers; they may be signed with ${dropping.join(', ')}`, evidence);
      if (total.signed > 0) {
        const reloaded = total.signedAfter > 0 ? `; ${total.signedAfter} were enqueued after the activate write — a signer has not reloaded its keys` : '';
        return result('wait', `${total.signed} queued envelopes are still signed with ${dropping.join(', ')}${reloaded}`, evidence);
      }
      return result('pass', `none of ${total.scanned} queued envelopes is signed with ${dropping.join(', ')}`, evidence);
    },
  };
}

/**
 * `stem-backlog` (before drop): no queued envelope — stream, pending or delayed — is still signed
 * with a key about to be removed. Those enqueued after the activate write are a signer that has not
 * reloaded its keys.
 */
import { createHash } from 'node:crypto';
import { BacklogMemory, countBacklog, persistMemory, restoreMemory } from '../stem/backlog.js';
import { sqlBacklog } from '../stem/sql-evidence.js';
import { redactUrl } from '../endpoints/tls.js';
import { keysToDrop, phaseTimes, requireStem, type Gate, type GateContext, verdictOf, type GateResult } from './types.js';

export const GATE_TYPE = 'stem-backlog';

/** Control queues are named by the worker namespace (stem-interop-2 §6); the CLI and dashboard default to `stem`. */
function controlNamespaces(workerNamespace: string): string[] {
  return [...new Set([workerNamespace, 'stem'])];
}

/**
 * What earlier evaluations in this process read, per broker, namespace, keys and cut-off: a daemon
 * (`run --interval`) re-reads only what changed between passes. A handful is plenty (one per ring
 * dropping a key); the oldest goes first.
 */
const memories = new Map<string, BacklogMemory>();
const MEMORIES = 16;

function memoryFor(key: string): BacklogMemory {
  let memory = memories.get(key);
  if (!memory) {
    memory = new BacklogMemory();
    memories.set(key, memory);
    for (const oldest of memories.keys()) {
      if (memories.size <= MEMORIES) break;
      memories.delete(oldest);
    }
  }
  return memory;
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
      const stem = requireStem(context);
      const signals = stem.signals;
      const broker = await stem.broker();
      const counting = { namespace: signals.namespace, controlNamespaces: controlNamespaces(signals.workerNamespace), keyIds: dropping, after: times.verified, batchSize: options.batchSize };
      let carry: GateResult['carry'];
      let report;
      if (broker.kind === 'redis') {
        // This process's memory (run --interval), else what the ring's state kept (run --once).
        // the URL without its password: the key is kept in the state, and a hash of a weak password can be guessed
        const key = createHash('sha256').update(JSON.stringify([redactUrl(broker.endpoint.url), counting])).digest('base64url');
        const memory = memoryFor(key);
        // busy: another evaluation in this process is using it; this one reads whole and keeps nothing
        const mine = !memory.busy;
        if (mine) restoreMemory(memory, context.state.gateProgress?.[options.name], key);
        report = await countBacklog(broker.redis, broker.endpoint, { ...counting, memory });
        const kept = mine ? persistMemory(memory, key) : null;
        if (mine && (kept || context.state.gateProgress?.[options.name] !== undefined)) carry = { [options.name]: kept ?? undefined };
      } else {
        report = await sqlBacklog(broker.sql, counting);
      }
      // what the memory kept goes with every verdict: the engine saves it with the ring's state
      const finish = (...args: Parameters<typeof result>): GateResult => ({ ...result(...args), ...(carry ? { carry } : {}) });
      const { total, retained } = report;
      const fixedNames = signals.fixedConsumerNames;
      const evidence = {
        dropping,
        activateVerifiedAt: times.verified.toISOString(),
        ...total,
        ...(report.readWhole ? { streamsReadWhole: report.readWhole.length } : {}),
        broadcastRetained: { ...retained, blocks: !fixedNames },
        sources: report.bySource
          .filter((source) => source.count.signed > 0 || source.count.unparseable > 0)
          .map((source) => ({ key: source.key, source: source.source, ...(source.group ? { group: source.group } : {}), ...source.count })),
      };
      const unreadable = total.unparseable + (fixedNames ? 0 : retained.unparseable);
      if (unreadable > 0) return finish('unknown', `${unreadable} queued or broadcast envelopes have unreadable headers; they may be signed with ${dropping.join(', ')}`, evidence);
      if (total.signed > 0) {
        const reloaded = total.signedAfter > 0 ? `; ${total.signedAfter} were enqueued after the activate write — a signer has not reloaded its keys` : '';
        return finish('wait', `${total.signed} queued envelopes are still signed with ${dropping.join(', ')}${reloaded}`, evidence);
      }
      if (retained.signed > 0 && !fixedNames) {
        const channels = report.bySource.filter((source) => source.source === 'broadcast-retained' && source.count.signed > 0).map((source) => `${source.key} (${source.count.signed})`);
        return finish(
          'wait',
          `${retained.signed} broadcasts signed with ${dropping.join(', ')} stay in ${channels.join(', ')}: Stem never trims broadcast streams (nor PostgreSQL's broadcast rows), and a worker that starts without a fixed consumer name reads its channel from the first entry, so it would dead-letter them once the key is gone. Re-sign them (stem-rotor broadcast resign ${context.ring.name} CHANNEL --dry-run, then --yes), or set stem.fixedConsumerNames if every subscriber has a stable consumerName`,
          evidence,
        );
      }
      const kept = retained.signed > 0 ? ` (${retained.signed} old-key broadcasts stay in their streams; every subscriber has a fixed consumer name and has read them)` : '';
      // built on an earlier count, `scanned` is what was read now plus what is remembered, not the whole backlog
      const builtOn = report.readWhole !== undefined && report.bySource.filter((source) => source.source === 'stream').length > report.readWhole.length;
      const counted = builtOn ? `${total.scanned} queued envelopes read or remembered (the rest unchanged since the last count)` : `${total.scanned} queued envelopes`;
      return finish('pass', `none of ${counted} is signed with ${dropping.join(', ')}${kept}`, evidence);
    },
  };
}

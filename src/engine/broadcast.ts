/**
 * `broadcast resign`: the remedy for old-key broadcasts that Stem keeps in its never-trimmed channel
 * streams (stem-interop-2 §1.5). Entries some existing consumer group has still to receive (after
 * its last-delivered id, or pending) are re-published signed with the active key, and the old
 * entry removed; entries every group already consumed are only removed (`--keep-history`
 * re-publishes them too, so workers that start under a new consumer name still see them; existing
 * subscribers then receive them again, as at-least-once delivery allows). An entry whose signature
 * verifies under no key the ring still trusts — revoked or forged — is never re-signed; it is left
 * and reported. Same canonical-form rules as `dlq replay --resign`.
 */
import { ConfigError } from '../errors.js';
import { compareIds, consumerGroups } from '../stem/backlog.js';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER } from '../stem/canonical.js';
import { stemKeys } from '../stem/redis-keys.js';
import type { Redis } from 'ioredis';
import { StemSources } from '../stem/sources.js';
import { signEnvelope } from '../stem/signer.js';
import { envelopeFromFields, streamFields } from '../stem/stream-format.js';
import { keysThatVerify, ringContext, signingConfig } from './dlq.js';
import type { RingEngine } from './engine.js';

export interface ResignedBroadcast {
  readonly entryId: string;
  readonly id: string;
  readonly keyId: string;
  readonly action: 'resign' | 'remove';
  /** Why: an existing group still has to receive it, or --keep-history. */
  readonly why: string;
  readonly newEntryId?: string;
}

export interface BroadcastResignResult {
  readonly ring: string;
  readonly channel: string;
  readonly stream: string;
  readonly dryRun: boolean;
  readonly activeKeyId: string;
  readonly entries: readonly ResignedBroadcast[];
  readonly skipped: readonly { readonly entryId: string; readonly id: string; readonly keyId: string; readonly why: string }[];
}

/** Ids each group has still to receive: after its last-delivered id, or in its pending list. */
async function stillWanted(broker: Redis, stream: string): Promise<(entryId: string) => string | null> {
  const groups = await consumerGroups(broker, stream);
  const pending = new Map<string, string>();
  for (const group of groups.keys()) {
    for (let start = '-'; ; ) {
      const page = (await broker.xpending(stream, group, start, '+', 1000)) as [string, ...unknown[]][];
      for (const [id] of page) pending.set(id, group);
      if (page.length < 1000) break;
      start = `(${page[page.length - 1]?.[0]}`;
    }
  }
  return (entryId) => {
    for (const [group, delivered] of groups) if (compareIds(entryId, delivered) > 0) return `group ${group} has not received it`;
    const group = pending.get(entryId);
    return group ? `pending in group ${group}` : null;
  };
}

export async function resignBroadcasts(engine: RingEngine, channel: string, options: { readonly dryRun: boolean; readonly keepHistory: boolean }): Promise<BroadcastResignResult> {
  const { signals, state, material } = await ringContext(engine);
  const keys = stemKeys(signals.namespace);
  const stream = keys.broadcast(channel);
  const stem = new StemSources(signals);
  try {
    const broker = await stem.brokerRedis('broadcast resign');
    if ((await broker.type(stream)) !== 'stream') throw new ConfigError(`broadcast channel "${channel}": no stream ${stream} in Redis (channel names are exact; queue events live under stem:events:<queue>)`);
    const wanted = await stillWanted(broker, stream);
    const revoked = new Set(state.revokedKeyIds);
    const signer = signingConfig(engine.ring.algorithm, state.activeKeyId, material);
    const entries: ResignedBroadcast[] = [];
    const skipped: BroadcastResignResult['skipped'][number][] = [];
    const rewrite: { entryId: string; fields: string[]; delivery: string | undefined; index: number }[] = [];
    for (let start = '-'; ; ) {
      const page = await broker.xrange(stream, start, '+', 'COUNT', 1000);
      for (const [entryId, fields] of page) {
        const envelope = envelopeFromFields(fields);
        const keyId = envelope.headers[SIGNATURE_KEY_HEADER];
        if (keyId === undefined || keyId === state.activeKeyId) continue; // unsigned (queue events) or already current
        const verifiesWith = keysThatVerify(engine.ring.algorithm, envelope, material, signals.timezone).filter((id) => !revoked.has(id));
        if (revoked.has(keyId) || verifiesWith.length === 0) {
          skipped.push({ entryId, id: envelope.id, keyId, why: revoked.has(keyId) ? `signed with revoked key "${keyId}": never re-signed; delete it with XDEL ${stream} ${entryId}` : 'its signature verifies under no key the ring still trusts; left in place' });
          continue;
        }
        const reason = wanted(entryId) ?? (options.keepHistory ? 'kept for workers that start under a new consumer name (--keep-history)' : null);
        entries.push({ entryId, id: envelope.id, keyId, action: reason ? 'resign' : 'remove', why: reason ?? 'every existing group has consumed it' });
        if (reason) rewrite.push({ entryId, fields, delivery: fields[fields.indexOf('delivery') + 1], index: entries.length - 1 });
      }
      if (page.length < 1000) break;
      start = `(${page[page.length - 1]?.[0]}`;
    }
    if (!options.dryRun) {
      for (const item of rewrite) {
        const envelope = envelopeFromFields(item.fields);
        const { [SIGNATURE_HEADER]: _signature, [SIGNATURE_KEY_HEADER]: _key, ...headers } = envelope.headers;
        const resigned = signEnvelope({ ...envelope, headers }, signer);
        // Publish before removing: a crash in between delivers a broadcast twice rather than never.
        const newEntryId = (await broker.xadd(stream, '*', ...streamFields(resigned), 'delivery', item.delivery ?? 'at-least-once')) as string;
        entries[item.index] = { ...(entries[item.index] as ResignedBroadcast), newEntryId };
      }
      const removals = entries.map((entry) => entry.entryId);
      if (removals.length > 0) await broker.xdel(stream, ...removals);
      await engine.audit('broadcast-resign', 'ok', {
        channel,
        resignedWith: state.activeKeyId,
        resigned: entries.filter((entry) => entry.action === 'resign').map((entry) => ({ id: entry.id, from: entry.entryId, to: entry.newEntryId, keyId: entry.keyId })),
        removed: entries.filter((entry) => entry.action === 'remove').map((entry) => ({ id: entry.id, entryId: entry.entryId, keyId: entry.keyId })),
        skipped: skipped.length,
      });
    }
    return { ring: engine.ring.name, channel, stream, dryRun: options.dryRun, activeKeyId: state.activeKeyId, entries, skipped };
  } finally {
    await stem.close();
  }
}

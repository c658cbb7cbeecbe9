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
import { ConfigError, RotorError } from '../errors.js';
import { consumerGroups } from '../stem/redis-scan.js';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER } from '../stem/canonical.js';
import { stemKeys } from '../stem/redis-keys.js';
import type { Redis } from 'ioredis';
import { StemSources } from '../stem/sources.js';
import { keysThatVerify, signEnvelope } from '../stem/signer.js';
import { compareIds, envelopeFromFields, streamFields } from '../stem/stream-format.js';
import { envelopeSchema, envelopeToJson, type Envelope } from '../stem/envelope.js';
import { parseStemJson, stringifyStemJson } from '../stem/json.js';
import type { SqlClient } from '../stem/sql.js';
import { ringContext, signingConfig } from './dlq.js';
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

interface ResignPlan {
  readonly entries: ResignedBroadcast[];
  readonly skipped: BroadcastResignResult['skipped'][number][];
}

/** Decides one old-key broadcast: re-sign (still wanted, or --keep-history), remove, or leave (revoked, unverifiable). */
function planEntry(plan: ResignPlan, context: Awaited<ReturnType<typeof ringContext>>, engine: RingEngine, entryId: string, envelope: Envelope, wanted: string | null, keepHistory: boolean, deleteHint: string): boolean {
  const { state, material, signals } = context;
  const keyId = envelope.headers[SIGNATURE_KEY_HEADER];
  if (keyId === undefined || keyId === state.activeKeyId) return false; // unsigned (queue events) or already current
  const revoked = new Set(state.revokedKeyIds);
  const verifiesWith = keysThatVerify(engine.ring.algorithm, envelope, material, signals.timezone).filter((id) => !revoked.has(id));
  if (revoked.has(keyId) || verifiesWith.length === 0) {
    plan.skipped.push({ entryId, id: envelope.id, keyId, why: revoked.has(keyId) ? `signed with revoked key "${keyId}": never re-signed; delete it with ${deleteHint}` : 'its signature verifies under no key the ring still trusts; left in place' });
    return false;
  }
  const reason = wanted ?? (keepHistory ? 'kept for workers that start under a new consumer name (--keep-history)' : null);
  plan.entries.push({ entryId, id: envelope.id, keyId, action: reason ? 'resign' : 'remove', why: reason ?? 'every existing group has consumed it' });
  return reason !== null;
}

function resigned(envelope: Envelope, signer: ReturnType<typeof signingConfig>): Envelope {
  const { [SIGNATURE_HEADER]: _signature, [SIGNATURE_KEY_HEADER]: _key, ...headers } = envelope.headers;
  return signEnvelope({ ...envelope, headers }, signer);
}

async function auditResign(engine: RingEngine, channel: string, activeKeyId: string, plan: ResignPlan): Promise<void> {
  await engine.audit('broadcast-resign', 'ok', {
    channel,
    resignedWith: activeKeyId,
    resigned: plan.entries.filter((entry) => entry.action === 'resign').map((entry) => ({ id: entry.id, from: entry.entryId, to: entry.newEntryId ?? entry.entryId, keyId: entry.keyId })),
    removed: plan.entries.filter((entry) => entry.action === 'remove').map((entry) => ({ id: entry.id, entryId: entry.entryId, keyId: entry.keyId })),
    skipped: plan.skipped.length,
  });
}

async function resignRedisBroadcasts(engine: RingEngine, broker: Redis, context: Awaited<ReturnType<typeof ringContext>>, channel: string, options: ResignOptions): Promise<BroadcastResignResult> {
  const { signals, state, material } = context;
  const stream = stemKeys(signals.namespace).broadcast(channel);
  if ((await broker.type(stream)) !== 'stream') throw new ConfigError(`broadcast channel "${channel}": no stream ${stream} in Redis (channel names are exact; queue events live under stem:events:<queue>)`);
  const wanted = await stillWanted(broker, stream);
  const signer = signingConfig(engine.ring.algorithm, state.activeKeyId, material);
  const plan: ResignPlan = { entries: [], skipped: [] };
  const rewrite: { fields: string[]; delivery: string | undefined; index: number }[] = [];
  for (let start = '-'; ; ) {
    const page = await broker.xrange(stream, start, '+', 'COUNT', 1000);
    for (const [entryId, fields] of page) {
      if (planEntry(plan, context, engine, entryId, envelopeFromFields(fields), wanted(entryId), options.keepHistory, `XDEL ${stream} ${entryId}`)) {
        rewrite.push({ fields, delivery: fields[fields.indexOf('delivery') + 1], index: plan.entries.length - 1 });
      }
    }
    if (page.length < 1000) break;
    start = `(${page[page.length - 1]?.[0]}`;
  }
  if (!options.dryRun) {
    for (const item of rewrite) {
      // Publish before removing: a crash in between delivers a broadcast twice rather than never.
      const newEntryId = (await broker.xadd(stream, '*', ...streamFields(resigned(envelopeFromFields(item.fields), signer)), 'delivery', item.delivery ?? 'at-least-once')) as string;
      plan.entries[item.index] = { ...(plan.entries[item.index] as ResignedBroadcast), newEntryId };
    }
    const removals = plan.entries.map((entry) => entry.entryId);
    if (removals.length > 0) await broker.xdel(stream, ...removals);
    await auditResign(engine, channel, state.activeKeyId, plan);
  }
  return { ring: engine.ring.name, channel, stream, dryRun: options.dryRun, activeKeyId: state.activeKeyId, ...plan };
}

/**
 * PostgreSQL keeps every broadcast row, and each worker id reads every row it has not acknowledged
 * (stem-interop-2 §1.3). A row some known worker id has not acknowledged is re-signed in place (so
 * exactly those workers still receive it, now verifiable); rows every known worker acknowledged are
 * deleted. One transaction, each update guarded by the row's current envelope.
 */
async function resignPostgresBroadcasts(engine: RingEngine, sql: SqlClient, context: Awaited<ReturnType<typeof ringContext>>, channel: string, options: ResignOptions): Promise<BroadcastResignResult> {
  const { signals, state, material } = context;
  const rows = await sql.query(
    `SELECT m.id, m.envelope::text AS envelope,
            (SELECT string_agg(w.worker_id, ', ' ORDER BY w.worker_id) FROM (SELECT DISTINCT a.worker_id FROM stem_broadcast_ack a JOIN stem_broadcast_messages b ON b.id = a.message_id WHERE b.channel = m.channel AND b.namespace = m.namespace) w
              WHERE NOT EXISTS (SELECT 1 FROM stem_broadcast_ack k WHERE k.message_id = m.id AND k.worker_id = w.worker_id AND k.acknowledged_at IS NOT NULL)) AS unread_by
     FROM stem_broadcast_messages m WHERE m.namespace = $1 AND m.channel = $2 ORDER BY m.created_at, m.id`,
    [signals.namespace, channel],
  );
  const table = `stem_broadcast_messages (channel "${channel}")`;
  if (rows.length === 0) throw new ConfigError(`broadcast channel "${channel}": no rows in stem_broadcast_messages for namespace "${signals.namespace}" (channel names are exact)`);
  const signer = signingConfig(engine.ring.algorithm, state.activeKeyId, material);
  const plan: ResignPlan = { entries: [], skipped: [] };
  const rewrite: { id: string; stored: string; envelope: Envelope; index: number }[] = [];
  for (const row of rows) {
    const id = String(row.id);
    const envelope = envelopeSchema.parse(parseStemJson(String(row.envelope)));
    const unreadBy = row.unread_by ? `worker ${String(row.unread_by)} has not received it` : null;
    if (planEntry(plan, context, engine, id, envelope, unreadBy, options.keepHistory, `DELETE FROM stem_broadcast_messages WHERE id = '${id}'`)) rewrite.push({ id, stored: String(row.envelope), envelope, index: plan.entries.length - 1 });
  }
  if (!options.dryRun && plan.entries.length > 0) {
    const rewritten = new Set(rewrite.map((item) => item.id));
    await sql.query('BEGIN READ WRITE');
    try {
      for (const item of rewrite) {
        const updated = await sql.query('UPDATE stem_broadcast_messages SET envelope = $1::jsonb, updated_at = now() WHERE id = $2 AND envelope = $3::jsonb RETURNING id', [stringifyStemJson(envelopeToJson(resigned(item.envelope, signer))), item.id, item.stored]);
        if (updated.length !== 1) throw new RotorError(`broadcast ${item.id} changed while it was being re-signed; nothing was written — run the command again`);
        plan.entries[item.index] = { ...(plan.entries[item.index] as ResignedBroadcast), newEntryId: `${item.id} (in place)` };
      }
      const removals = plan.entries.filter((entry) => !rewritten.has(entry.entryId)).map((entry) => entry.entryId);
      if (removals.length > 0) await sql.query('DELETE FROM stem_broadcast_messages WHERE id = ANY($1::text[])', [removals]);
      await sql.query('COMMIT');
    } catch (error) {
      await sql.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    await auditResign(engine, channel, state.activeKeyId, plan);
  }
  return { ring: engine.ring.name, channel, stream: table, dryRun: options.dryRun, activeKeyId: state.activeKeyId, ...plan };
}

interface ResignOptions {
  readonly dryRun: boolean;
  readonly keepHistory: boolean;
}

export async function resignBroadcasts(engine: RingEngine, channel: string, options: ResignOptions): Promise<BroadcastResignResult> {
  const context = await ringContext(engine);
  const stem = new StemSources(context.signals);
  try {
    const broker = await stem.broker();
    if (broker.kind === 'redis') return await resignRedisBroadcasts(engine, broker.redis, context, channel, options);
    if (broker.sql.dialect === 'postgres') return await resignPostgresBroadcasts(engine, broker.sql, context, channel, options);
    throw new ConfigError(`broadcast resign: Stem's SQLite broker keeps no broadcasts (they are delivered in-process only), so there is nothing to re-sign; \`stem-rotor status ${engine.ring.name}\` shows what the next step waits for`);
  } finally {
    await stem.close();
  }
}

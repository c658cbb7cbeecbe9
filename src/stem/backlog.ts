/**
 * Envelopes still queued in Stem's Redis, counted by signing key: stream entries not yet delivered
 * to the consumer group, pending (delivered, unacknowledged) entries, and delayed ZSET members
 * (stem-interop §2.6). Counting runs server-side in batches (Lua), so only counts cross the wire.
 */
import type { Redis } from 'ioredis';
import prelude from './lua/_prelude.lua';
import countDelayed from './lua/count-delayed-1.lua';
import countPending from './lua/count-pending-1.lua';
import countStream from './lua/count-stream-1.lua';
import { isControlQueue, stemKeys } from './redis-keys.js';

export interface BacklogCount {
  scanned: number;
  /** Signed with one of the counted keys. */
  signed: number;
  /** Of those, enqueued after the cut-off time. */
  signedAfter: number;
  unsigned: number;
  unparseable: number;
}

export interface BacklogReport {
  readonly total: BacklogCount;
  readonly bySource: { readonly key: string; readonly source: 'stream' | 'pending' | 'delayed'; readonly count: BacklogCount }[];
}

type Reply = [string, number, number, number, number, number];

function emptyCount(): BacklogCount {
  return { scanned: 0, signed: 0, signedAfter: 0, unsigned: 0, unparseable: 0 };
}

function add(into: BacklogCount, reply: Reply): void {
  into.scanned += Number(reply[1]);
  into.signed += Number(reply[2]);
  into.signedAfter += Number(reply[3]);
  into.unsigned += Number(reply[4]);
  into.unparseable += Number(reply[5]);
}

async function scanKeys(redis: Redis, pattern: string, type: 'stream' | 'zset'): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000, 'TYPE', type);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

/** The group's last-delivered id, or null when no consumer group exists yet (nothing delivered). */
async function lastDelivered(redis: Redis, stream: string, group: string): Promise<string | null> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const info of groups) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < info.length; i += 2) fields.set(String(info[i]), info[i + 1]);
    if (fields.get('name') === group) return String(fields.get('last-delivered-id'));
  }
  return null;
}

export interface BacklogOptions {
  readonly namespace: string;
  readonly keyIds: readonly string[];
  /** Envelopes enqueued after this are counted separately ("a signer has not reloaded"). */
  readonly after: Date;
  readonly batchSize: number;
}

export async function countBacklog(redis: Redis, options: BacklogOptions): Promise<BacklogReport> {
  const keys = stemKeys(options.namespace);
  const run = (body: string, key: string, args: (string | number)[]) => redis.eval(`${prelude}\n${body}`, 1, key, ...args, ...options.keyIds) as Promise<Reply>;
  const after = options.after.getTime();
  const total = emptyCount();
  const bySource: BacklogReport['bySource'][number][] = [];
  const tallied = (key: string, source: 'stream' | 'pending' | 'delayed') => {
    const count = emptyCount();
    bySource.push({ key, source, count });
    return (reply: Reply) => {
      add(count, reply);
      add(total, reply);
    };
  };

  for (const stream of await scanKeys(redis, keys.streamPattern, 'stream')) {
    const queue = keys.queueOfStream(stream);
    if (queue === null || isControlQueue(queue)) continue;
    const group = keys.group(queue);
    const delivered = await lastDelivered(redis, stream, group);
    const undelivered = tallied(stream, 'stream');
    for (let start = delivered === null ? '-' : `(${delivered}`; ; ) {
      const reply = await run(countStream, stream, [start, options.batchSize, after]);
      undelivered(reply);
      if (Number(reply[1]) < options.batchSize) break;
      start = `(${reply[0]}`;
    }
    if (delivered === null) continue;
    const pending = tallied(stream, 'pending');
    for (let start = '-'; ; ) {
      const reply = await run(countPending, stream, [group, start, options.batchSize, after]);
      pending(reply);
      if (Number(reply[1]) < options.batchSize) break;
      start = `(${reply[0]}`;
    }
  }
  for (const delayed of await scanKeys(redis, keys.delayedPattern, 'zset')) {
    const queue = keys.queueOf(delayed, 'delayed');
    if (queue === null || isControlQueue(queue)) continue;
    const tally = tallied(delayed, 'delayed');
    for (let rank = '0'; rank !== ''; ) {
      const reply = await run(countDelayed, delayed, [rank, options.batchSize, after]);
      tally(reply);
      rank = String(reply[0]);
    }
  }
  return { total, bySource };
}

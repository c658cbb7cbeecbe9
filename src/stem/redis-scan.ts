/** Finding Stem's keys and stream consumer groups in Redis: SCAN by type, XINFO GROUPS. */
import type { Redis } from 'ioredis';

/** Every key matching `pattern` of one type, sorted (SCAN in pages of 1,000; never KEYS). */
export async function scanKeys(redis: Redis, pattern: string, type: 'stream' | 'zset'): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000, 'TYPE', type);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

/** Every consumer group of a stream with its last-delivered id. */
export async function consumerGroups(redis: Redis, stream: string): Promise<Map<string, string>> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  const found = new Map<string, string>();
  for (const info of groups) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < info.length; i += 2) fields.set(String(info[i]), info[i + 1]);
    found.set(String(fields.get('name')), String(fields.get('last-delivered-id')));
  }
  return found;
}

/**
 * `redis` store: the state of each ring as JSON in a hash with a version, saved by a Lua script that
 * checks the caller's lease (token + fencing counter) atomically; a lease hash per ring with owner,
 * token, fence and expiry (compared against the injected clock, so tests can move time; a real
 * PEXPIRE cleans up abandoned leases); the fencing counter in its own key so it survives expiry;
 * the audit trail in a Redis stream. `rediss://`, CA, client certificates and ACL users come from
 * the shared Redis endpoint config.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import type { RedisEndpoint } from '../endpoints/schema.js';
import { parseStoredState } from '../core/state-schema.js';
import type { RingState } from '../core/types.js';
import { LeaseHeldError, RotorError } from '../errors.js';
import { connectRedis } from '../endpoints/redis.js';
import { currentProcess, processState, type ProcessIdentity } from '../files/process.js';
import { hostname } from 'node:os';
import { chainedText, readRecords, verifyRecords, type AuditRead, type AuditVerification, type StoredRecord } from './audit-chain.js';
import type { AcquireOptions, AuditEvent, Lease, StateStore } from './types.js';

export const STORE_TYPE = 'redis';

export interface RedisStoreOptions {
  readonly endpoint: RedisEndpoint;
  /** Key prefix, so one Redis can hold several stem-rotor installations. @default 'stem-rotor' */
  readonly prefix?: string;
  readonly clock: Clock;
}

/**
 * Input: KEYS[1] lease hash, KEYS[2] fence counter; ARGV[1] token, ARGV[2] owner, ARGV[3] now ms,
 * ARGV[4] ttl ms, ARGV[5] "1" to pre-empt, ARGV[6] holder identity (JSON), ARGV[7] the token of a
 * holder known to be gone (taken over only if it still holds the lease), or "".
 * Output: { fence } on success, or { -1, holder owner, holder expiry ms, holder token, holder identity } when held.
 */
const ACQUIRE_2 = `
local token = redis.call('HGET', KEYS[1], 'token')
local expires = tonumber(redis.call('HGET', KEYS[1], 'expiresAt') or '0')
local now = tonumber(ARGV[3])
if token and token ~= ARGV[1] and expires > now and ARGV[5] ~= '1' and token ~= ARGV[7] then
  return { -1, redis.call('HGET', KEYS[1], 'owner'), expires, token, redis.call('HGET', KEYS[1], 'holder') or '' }
end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'owner', ARGV[2], 'fence', fence, 'expiresAt', now + tonumber(ARGV[4]), 'holder', ARGV[6])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) + 60000)
return { fence }
`;

/**
 * Input: KEYS[1] state hash, KEYS[2] lease hash; ARGV[1] token, ARGV[2] fence, ARGV[3] state JSON,
 * ARGV[4] now ms, ARGV[5] lease ttl ms.
 * Output: the new state version, or -1 when the caller's lease is no longer current (fenced out).
 * A successful save renews the lease.
 */
const SAVE_2 = `
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[1] or redis.call('HGET', KEYS[2], 'fence') ~= ARGV[2] then
  return -1
end
redis.call('HSET', KEYS[2], 'expiresAt', tonumber(ARGV[4]) + tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]) + 60000)
redis.call('HSET', KEYS[1], 'state', ARGV[3])
return redis.call('HINCRBY', KEYS[1], 'version', 1)
`;

/** Input: KEYS[1] lease hash; ARGV[1] token. Gives the time up, keeps nothing else. Output: 1 or 0. */
const RELEASE_1 = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * Input: KEYS[1] audit stream, KEYS[2] head (text of the last record); ARGV[1] the head the caller
 * chained to, ARGV[2] ring, ARGV[3] the record text. Appends only if the head is unchanged.
 * Output: 1, or { 0, current head } when another writer appended first.
 */
const APPEND_AUDIT_2 = `
local head = redis.call('GET', KEYS[2]) or ''
if head ~= ARGV[1] then
  return { 0, head }
end
redis.call('XADD', KEYS[1], '*', 'ring', ARGV[2], 'event', ARGV[3])
redis.call('SET', KEYS[2], ARGV[3])
return 1
`;

function parseHolder(text: string | undefined): ProcessIdentity | null {
  try {
    const holder = JSON.parse(text ?? '') as ProcessIdentity;
    return typeof holder.pid === 'number' && typeof holder.host === 'string' ? holder : null;
  } catch {
    return null;
  }
}

export class RedisStore implements StateStore {
  private readonly options: RedisStoreOptions;
  private readonly prefix: string;
  private client: Promise<Redis> | null = null;

  constructor(options: RedisStoreOptions) {
    this.options = options;
    this.prefix = options.prefix ?? 'stem-rotor';
  }

  private redis(): Promise<Redis> {
    this.client ??= connectRedis(this.options.endpoint, "the state store's");
    return this.client;
  }

  private key(kind: 'state' | 'lease' | 'fence', ring: string): string {
    return `${this.prefix}:ring:{${ring}}:${kind}`;
  }

  private parseState(ring: string, text: string | null): RingState | null {
    return text === null ? null : parseStoredState(text, `Redis key ${this.key('state', ring)} field "state"`, ring);
  }

  async load(ring: string): Promise<RingState | null> {
    return this.parseState(ring, await (await this.redis()).hget(this.key('state', ring), 'state'));
  }

  /**
   * One pipeline of HGETs: one round trip and one socket write for the lot. A ring whose state
   * cannot be read or parsed is left out, so its own `load` reports it and the others go on.
   */
  async loadMany(rings: readonly string[]): Promise<ReadonlyMap<string, RingState | null>> {
    const pipeline = (await this.redis()).pipeline();
    for (const ring of rings) pipeline.hget(this.key('state', ring), 'state');
    // a batch that fails as a whole (the connection dropped) is no answer: each ring's own load says what happened
    const replies = (await pipeline.exec().catch(() => null)) ?? [];
    const states = new Map<string, RingState | null>();
    rings.forEach((ring, index) => {
      const [error, text] = replies[index] ?? [new Error('no reply')];
      if (error) return;
      try {
        states.set(ring, this.parseState(ring, (text as string | null) ?? null));
      } catch {
        // left for load(ring) to report
      }
    });
    return states;
  }

  async save(state: RingState, lease: Lease): Promise<void> {
    const result = (await (await this.redis()).eval(SAVE_2, 2, this.key('state', state.ring), this.key('lease', state.ring), lease.token, String(lease.fence), JSON.stringify(state), String(this.options.clock.now().getTime()), String(lease.ttlMs))) as number;
    if (result === -1) throw new LeaseHeldError(`ring "${state.ring}": lease lost (fence ${lease.fence}); another orchestrator took over — nothing more was saved`);
  }

  async acquire(ring: string, options: AcquireOptions): Promise<Lease> {
    const now = this.options.clock.now().getTime();
    const attempt = async (goneToken: string) =>
      (await (await this.redis()).eval(ACQUIRE_2, 2, this.key('lease', ring), this.key('fence', ring), options.token, options.owner, String(now), String(options.ttlMs), options.preempt ? '1' : '0', JSON.stringify(currentProcess()), goneToken)) as [number, string?, number?, string?, string?];
    let reply = await attempt('');
    const holder = reply[0] === -1 ? parseHolder(reply[4]) : null;
    if (holder && processState(holder) === 'gone') {
      reply = await attempt(reply[3] ?? '');
      if (reply[0] !== -1) await this.appendAudit({ time: new Date(now).toISOString(), ring, actor: { user: 'stem-rotor', host: hostname() }, action: 'break-lease', outcome: 'ok', details: { holder, why: 'holder process is gone' } });
    }
    if (reply[0] === -1) throw new LeaseHeldError(`ring "${ring}" is locked by ${reply[1]} until ${new Date(Number(reply[2])).toISOString()}`);
    return { ring, owner: options.owner, token: options.token, fence: Number(reply[0]), expiresAt: new Date(now + options.ttlMs).toISOString(), ttlMs: options.ttlMs };
  }

  async release(lease: Lease): Promise<void> {
    await (await this.redis()).eval(RELEASE_1, 1, this.key('lease', lease.ring), lease.token);
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    const redis = await this.redis();
    const stream = `${this.prefix}:audit`;
    let head = (await redis.get(`${stream}:head`)) ?? '';
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const reply = (await redis.eval(APPEND_AUDIT_2, 2, stream, `${stream}:head`, head, event.ring, chainedText(event, head === '' ? null : head))) as number | [number, string];
      if (reply === 1) return;
      head = (reply as [number, string])[1];
    }
    throw new RotorError(`audit trail ${stream}: could not append after 50 attempts against concurrent writers`);
  }

  private async records(): Promise<StoredRecord[]> {
    const redis = await this.redis();
    const records: StoredRecord[] = [];
    for (let start = '-'; ; ) {
      const page = await redis.xrange(`${this.prefix}:audit`, start, '+', 'COUNT', 1000);
      for (const [id, fields] of page) records.push({ at: `${this.prefix}:audit entry ${id}`, text: String(fields[fields.indexOf('event') + 1] ?? '') });
      if (page.length < 1000) return records;
      start = `(${page[page.length - 1]?.[0]}`;
    }
  }

  async readAudit(ring?: string): Promise<AuditRead> {
    return readRecords(await this.records(), ring);
  }

  async verifyAudit(): Promise<AuditVerification> {
    return verifyRecords(await this.records());
  }

  async residue(): Promise<readonly string[]> {
    return []; // nothing on disk
  }

  async close(): Promise<void> {
    if (this.client) (await this.client).disconnect();
    this.client = null;
  }
}

export function createRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}

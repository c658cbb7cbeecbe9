/**
 * Stem's broker and result backend for one command: Redis, PostgreSQL or a SQLite file each
 * (stem-interop-2 §5), opened lazily and shared by the gates that read them; `close()` ends
 * whatever was opened.
 */
import type { Redis } from 'ioredis';
import { stemStoreKind, type StemEndpoint } from '../endpoints/schema.js';
import type { StemSignals } from './signals-schema.js';
import { ConfigError } from '../errors.js';
import { connectRedis } from '../endpoints/redis.js';
import { redactUrl } from '../endpoints/tls.js';
import { connectSql, sqlitePath, type SqlClient } from './sql.js';

export type StemStore = { readonly kind: 'redis'; readonly redis: Redis; readonly endpoint: StemEndpoint } | { readonly kind: 'sql'; readonly sql: SqlClient };
export type StemRole = 'broker' | 'backend';

/** Where an endpoint points, without its password: for messages and `check`. */
export function describeEndpoint(endpoint: StemEndpoint): string {
  const kind = stemStoreKind(endpoint.url);
  if (kind === 'sqlite') return `sqlite ${sqlitePath(endpoint.url)}`;
  return kind === 'postgres' ? `postgres ${redactUrl(endpoint.url)}` : `redis ${redactUrl(endpoint.url)}`;
}

export class StemSources {
  private readonly opened = new Map<StemRole, Promise<StemStore>>();
  readonly signals: StemSignals;

  constructor(signals: StemSignals) {
    this.signals = signals;
  }

  endpoint(role: StemRole): StemEndpoint {
    return role === 'broker' ? this.signals.broker : (this.signals.backend ?? this.signals.broker);
  }

  private open(role: StemRole): Promise<StemStore> {
    let store = this.opened.get(role);
    if (!store) {
      const endpoint = this.endpoint(role);
      store =
        stemStoreKind(endpoint.url) === 'redis'
          ? connectRedis(endpoint, `Stem's ${role}`).then((redis) => ({ kind: 'redis' as const, redis, endpoint }))
          : connectSql(endpoint, role).then((sql) => ({ kind: 'sql' as const, sql }));
      this.opened.set(role, store);
    }
    return store;
  }

  broker(): Promise<StemStore> {
    return this.open('broker');
  }

  backend(): Promise<StemStore> {
    return this.open('backend');
  }

  /** The broker's Redis, for what only exists there (DLQ replay); `instead` is the command to run otherwise. */
  async brokerRedis(what: string, instead: string): Promise<Redis> {
    const store = await this.broker();
    if (store.kind !== 'redis') throw new ConfigError(`${what} needs Stem's broker on Redis; this ring's broker is ${describeEndpoint(this.signals.broker)}. Nothing was written; ${instead}`);
    return store.redis;
  }

  /** Both answer (a Redis PING, a trivial SQL query). */
  async ping(): Promise<void> {
    for (const store of [await this.broker(), await this.backend()]) {
      if (store.kind === 'redis') await store.redis.ping();
      else await store.sql.query('SELECT 1');
    }
  }

  async close(): Promise<void> {
    const stores = await Promise.allSettled(this.opened.values());
    for (const store of stores) {
      if (store.status !== 'fulfilled') continue;
      if (store.value.kind === 'redis') store.value.redis.disconnect();
      else await store.value.sql.close();
    }
    this.opened.clear();
  }
}

/**
 * Redis connections, for Stem's broker and backend and for the Redis state store. ioredis is imported
 * lazily: rings without Redis never load it. Supports rediss:// with a CA and a client certificate
 * (mutual TLS), requirepass and ACL users.
 */
import type { Redis, RedisOptions } from 'ioredis';
import type { RedisEndpoint } from './schema.js';
import { ConfigError, RotorError } from '../errors.js';
import { redactUrl, tlsFiles } from './tls.js';

export function redisOptions(endpoint: RedisEndpoint, env: NodeJS.ProcessEnv = process.env): RedisOptions {
  const url = new URL(endpoint.url);
  const options: RedisOptions = {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 6379),
    db: Number(url.pathname.slice(1) || 0),
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: endpoint.connectTimeout,
    commandTimeout: endpoint.commandTimeout,
    retryStrategy: () => null,
  };
  const username = endpoint.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  if (username) options.username = username;
  const password = endpoint.passwordEnv ? env[endpoint.passwordEnv] : url.password ? decodeURIComponent(url.password) : undefined;
  if (endpoint.passwordEnv && password === undefined) throw new ConfigError(`redis ${redactUrl(endpoint.url)}: $${endpoint.passwordEnv} is not set`);
  if (password !== undefined) options.password = password;
  if (url.protocol === 'rediss:' || endpoint.tls) {
    options.tls = tlsFiles(endpoint.tls ?? {}, 'redis');
  }
  return options;
}

/** `whose` names it in errors: "Stem's broker", "the state store's". */
export async function connectRedis(endpoint: RedisEndpoint, whose: string): Promise<Redis> {
  // ioredis is CommonJS: module.exports is the Redis class, which ESM exposes as `default`
  // (Node, vitest and the esbuild bundle agree on that; its typings describe the namespace).
  const { default: Redis } = (await import('ioredis')) as unknown as { default: typeof import('ioredis').Redis };
  const client = new Redis(redisOptions(endpoint));
  // Socket and TLS errors arrive as events; keep the first to explain a failed connect.
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new RotorError(`cannot reach ${whose} Redis at ${redactUrl(endpoint.url)}: ${(cause ?? (error as Error)).message}`);
  }
  return client;
}

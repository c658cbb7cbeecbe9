/** What Redis and PostgreSQL endpoints share: URLs safe for messages, and TLS material from files. */
import { readFileSync } from 'node:fs';
import type { StemEndpoint } from './schema.js';
import { ConfigError } from '../errors.js';

/** A URL with its password replaced, safe for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid url)';
  }
}

function readPem(path: string, what: string, store: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${store} ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The endpoint's `tls` files as Node TLS options (verified); `store` names it in errors. */
export function tlsFiles(tls: NonNullable<StemEndpoint['tls']>, store: string): { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string; rejectUnauthorized: true } {
  return {
    ...(tls.ca ? { ca: readPem(tls.ca, 'CA', store) } : {}),
    ...(tls.cert ? { cert: readPem(tls.cert, 'client certificate', store) } : {}),
    ...(tls.key ? { key: readPem(tls.key, 'client key', store) } : {}),
    ...(tls.servername ? { servername: tls.servername } : {}),
    rejectUnauthorized: true,
  };
}

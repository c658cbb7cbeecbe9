/**
 * Read-only connections to Stem's PostgreSQL or SQLite broker/backend (stem-interop-2 §5). `pg` and
 * `better-sqlite3` are imported lazily: rings on Redis never load them. PostgreSQL sessions are
 * read-only (`default_transaction_read_only`); SQLite files are opened read-only and must exist.
 */
import type { StemEndpoint } from '../endpoints/schema.js';
import { ConfigError, RotorError } from '../errors.js';
import { redactUrl, tlsFiles } from '../endpoints/tls.js';

export type SqlDialect = 'postgres' | 'sqlite';

/** What to do about the errors a wrong database or a missing grant gives. */
function hintFor(message: string, code: unknown): string {
  if (code === '42P01' || /no such table/.test(message)) return " (Stem's tables are not here: wrong database or file, or Stem's migrations have not run there)";
  if (code === '42501') return ' (grant SELECT on the table, as examples/postgres/grants.sql does)';
  return '';
}
export type SqlRow = Record<string, unknown>;

export interface SqlClient {
  readonly dialect: SqlDialect;
  /** Where it points, safe for messages (no password). */
  readonly label: string;
  /** `sql` uses `$1…` for PostgreSQL and `?` for SQLite. */
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  close(): Promise<void>;
}

/** `sqlite:///abs/path.db` → `/abs/path.db`; `sqlite:rel/path.db` → `rel/path.db`. */
export function sqlitePath(url: string): string {
  const rest = url.slice('sqlite:'.length);
  return rest.startsWith('//') ? rest.slice(2) : rest;
}

/** The `pg` client settings for an endpoint; the password comes from the URL or `passwordEnv`. */
export function postgresConfig(endpoint: StemEndpoint, env: NodeJS.ProcessEnv = process.env): import('pg').ClientConfig {
  const url = new URL(endpoint.url);
  const password = endpoint.passwordEnv ? env[endpoint.passwordEnv] : url.password ? decodeURIComponent(url.password) : undefined;
  if (endpoint.passwordEnv && password === undefined) throw new ConfigError(`postgres ${redactUrl(endpoint.url)}: $${endpoint.passwordEnv} is not set`);
  const sslmode = url.searchParams.get('sslmode');
  const tls = endpoint.tls ?? (sslmode && sslmode !== 'disable' && sslmode !== 'prefer' && sslmode !== 'allow' ? {} : undefined);
  const user = endpoint.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  return {
    // ?host=/run/postgresql selects a Unix socket directory, as libpq does.
    host: url.searchParams.get('host') ?? (url.hostname.replace(/^\[|\]$/g, '') || 'localhost'),
    port: Number(url.port || 5432),
    database: decodeURIComponent(url.pathname.slice(1)) || user || 'postgres',
    ...(user ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { ssl: tlsFiles(tls, 'postgres') } : {}),
    application_name: 'stem-rotor',
    connectionTimeoutMillis: endpoint.connectTimeout,
    query_timeout: endpoint.commandTimeout,
    statement_timeout: endpoint.commandTimeout,
    options: '-c default_transaction_read_only=on',
  };
}

async function connectPostgres(endpoint: StemEndpoint, role: string): Promise<SqlClient> {
  const { default: pg } = await import('pg');
  const label = `${role} PostgreSQL ${redactUrl(endpoint.url)}`;
  const client = new pg.Client(postgresConfig(endpoint));
  // A dropped connection arrives as an event; keep it so the next query explains itself.
  let lost: Error | undefined;
  client.on('error', (error: Error) => {
    lost ??= error;
  });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new RotorError(`cannot reach Stem's ${label}: ${(error as Error).message}`);
  }
  return {
    dialect: 'postgres',
    label,
    async query(sql, params = []) {
      if (lost) throw new RotorError(`Stem's ${label}: connection lost: ${lost.message}`);
      try {
        return (await client.query(sql, [...params])).rows as SqlRow[];
      } catch (error) {
        const message = (error as Error).message;
        throw new RotorError(`Stem's ${label}: ${message}${hintFor(message, (error as { code?: unknown }).code)}`);
      }
    },
    async close() {
      await client.end().catch(() => undefined);
    },
  };
}

async function openSqlite(endpoint: StemEndpoint, role: string): Promise<SqlClient> {
  const { default: Database } = await import('better-sqlite3');
  const path = sqlitePath(endpoint.url);
  const label = `${role} SQLite file ${path}`;
  let db: import('better-sqlite3').Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: endpoint.commandTimeout });
  } catch (error) {
    throw new RotorError(`cannot open Stem's ${label}: ${(error as Error).message}`);
  }
  return {
    dialect: 'sqlite',
    label,
    async query(sql, params = []) {
      try {
        return db.prepare(sql).all(...params) as SqlRow[];
      } catch (error) {
        const message = (error as Error).message;
        throw new RotorError(`Stem's ${label}: ${message}${hintFor(message, undefined)}`);
      }
    },
    async close() {
      db.close();
    },
  };
}

export function connectSql(endpoint: StemEndpoint, role: string): Promise<SqlClient> {
  return endpoint.url.startsWith('sqlite:') ? openSqlite(endpoint, role) : connectPostgres(endpoint, role);
}

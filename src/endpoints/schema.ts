/** Where stem-rotor connects: Redis (Stem's or the state store's), PostgreSQL or a SQLite file. */
import * as z from 'zod';
import { durationSchema } from '../duration.js';

const endpointTlsSchema = z
  .strictObject({
    ca: z.string().optional().describe('PEM CA bundle'),
    cert: z.string().optional().describe('PEM client certificate (mutual TLS)'),
    key: z.string().optional().describe('PEM client key'),
    servername: z.string().optional(),
  })
  .optional();

const endpointFields = {
  username: z.string().min(1).optional().describe('user (or put it in the URL)'),
  passwordEnv: z.string().min(1).optional().describe('name of the environment variable holding the password; keeps it out of the file'),
  tls: endpointTlsSchema,
  connectTimeout: durationSchema.prefault('5s'),
  commandTimeout: durationSchema.prefault('10s'),
};

export const redisEndpointSchema = z.strictObject({
  url: z
    .string()
    .refine((url) => /^rediss?:\/\/[^/]+/.test(url), 'expected redis://host:port/db or rediss://…')
    .describe('redis://[user[:password]@]host:port/db; rediss:// for TLS'),
  ...endpointFields,
});
export type RedisEndpoint = z.infer<typeof redisEndpointSchema>;

/** Which kind of store a Stem URL names (stem-interop-2 §5): Redis, PostgreSQL, or a SQLite file. */
export function stemStoreKind(url: string): 'redis' | 'postgres' | 'sqlite' | null {
  if (/^rediss?:\/\/[^/]+/.test(url)) return 'redis';
  if (/^postgres(ql)?:\/\//.test(url)) return URL.canParse(url) ? 'postgres' : null;
  if (/^sqlite:.+/.test(url)) return 'sqlite';
  return null;
}

/** Stem's broker or result backend: Redis, PostgreSQL (read-only access suffices) or a SQLite file. */
export const stemEndpointSchema = z
  .strictObject({
    url: z
      .string()
      .refine((url) => stemStoreKind(url) !== null, 'expected redis://host:port/db, rediss://…, postgres://[user@]host:port/database or sqlite:///path/to/stem.db')
      .describe('redis://host:port/db (rediss:// for TLS), postgres://[user[:password]@]host:port/database (?sslmode=require for TLS), or sqlite:///absolute/path.db (sqlite:relative/path.db)'),
    ...endpointFields,
  })
  .superRefine((endpoint, context) => {
    if (stemStoreKind(endpoint.url) !== 'sqlite') return;
    for (const field of ['username', 'passwordEnv', 'tls'] as const) {
      if (endpoint[field] !== undefined) context.addIssue({ code: 'custom', path: [field], message: `a SQLite file has no ${field}` });
    }
  });
export type StemEndpoint = z.infer<typeof stemEndpointSchema>;


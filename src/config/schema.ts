/** The config file's schema: the single source of config types (`z.infer`). */
import * as z from 'zod';
import { keyIdProblem } from '../stem/keys.js';
import { ALGORITHMS, STEM_ENV_NAMES, type StemEnvName } from '../stem/signing-env.js';
import { durationSchema } from './duration.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, ".", "_" and "-"');

const fieldMapping = z
  .partialRecord(z.enum(STEM_ENV_NAMES as [StemEnvName, ...StemEnvName[]]), z.string().min(1))
  .default({})
  .describe('Stem variable → field name in the secret; defaults to the variable name');

const targetBase = {
  name: name.describe('unique within the ring; used in status, audit and messages'),
  audience: z.enum(['all', 'verifiers']).default('all').describe('all: signs and verifies; verifiers: Ed25519 verify-only'),
  fields: fieldMapping,
};

export const dotenvTargetSchema = z.strictObject({
  ...targetBase,
  provider: z.literal('dotenv'),
  path: z.string().min(1).describe('the .env file, relative to the config file'),
});

export const targetSchema = z.discriminatedUnion('provider', [dotenvTargetSchema]);
export type TargetConfig = z.infer<typeof targetSchema>;

const soakGateSchema = z.strictObject({
  type: z.literal('soak'),
  name: name.optional(),
  duration: durationSchema.optional().describe('defaults to policy.propagate (before activate) or policy.drain (before drop)'),
});
const approvalGateSchema = z.strictObject({ type: z.literal('approval'), name: name.optional() });
export const gateSchema = z.discriminatedUnion('type', [soakGateSchema, approvalGateSchema]);
export type GateConfig = z.infer<typeof gateSchema>;

export const policySchema = z
  .strictObject({
    maxAge: durationSchema.prefault('30d').describe('`run` starts a rotation when the active key is older'),
    propagate: durationSchema.prefault('10m').describe('soak between add-new and activate'),
    drain: durationSchema.prefault('1h').describe('soak between activate and drop; exceed the longest retry/delay horizon'),
    autoAdvance: z.boolean().default(false).describe('`run` advances rotations whose gates pass'),
  })
  .prefault({});
export type Policy = z.infer<typeof policySchema>;

export const ringSchema = z.strictObject({
  algorithm: z.enum(ALGORITHMS).default('hmac-sha256'),
  keyIdPrefix: z
    .string()
    .refine((prefix) => prefix === '' || keyIdProblem(prefix) === null, 'key id prefix must not contain ":", "," or whitespace')
    .optional()
    .describe('new key ids are <prefix><yyyymmdd>-<4 hex>; defaults to "<ring>-"'),
  policy: policySchema,
  gates: z
    .strictObject({
      beforeActivate: z.array(gateSchema).default([{ type: 'soak' }]),
      beforeDrop: z.array(gateSchema).default([{ type: 'soak' }]),
    })
    .prefault({}),
  targets: z.array(targetSchema).min(1, 'a ring needs at least one target'),
});
export type RingConfig = z.infer<typeof ringSchema> & { readonly name: string };

export const storeSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('file'), dir: z.string().min(1).default('.stem-rotor') }),
  ])
  .default({ type: 'file', dir: '.stem-rotor' });
export type StoreConfig = z.infer<typeof storeSchema>;

export const configSchema = z.strictObject({
  version: z.literal(1).default(1),
  store: storeSchema,
  rings: z.record(name, ringSchema).refine((rings) => Object.keys(rings).length > 0, 'define at least one ring'),
});
export type RawConfig = z.infer<typeof configSchema>;

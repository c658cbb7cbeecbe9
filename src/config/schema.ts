/** The config file's schema: the single source of config types (`z.infer`). */
import * as z from 'zod';
import { ALGORITHMS, STEM_ENV_NAMES, type StemEnvName } from '../stem/signing-env.js';
import { durationSchema } from '../duration.js';
import { DIALECTS } from '../envfile/codec.js';
import { NOTICE_KINDS } from '../core/events.js';
import { WORKLOAD_KINDS } from '../core/types.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, ".", "_" and "-"');

const fieldMapping = z
  .partialRecord(z.enum(STEM_ENV_NAMES as [StemEnvName, ...StemEnvName[]]), z.string().min(1))
  .default({})
  .describe('Stem variable → field name in the secret; defaults to the variable name');

const restartHookSchema = z.union([
  z.strictObject({
    exec: z.array(z.string().min(1)).min(1).describe('a command and its arguments, run without a shell, e.g. ["systemctl", "restart", "stem-worker@*"]; the event is JSON on stdin'),
    timeout: durationSchema.prefault('5m'),
  }),
  z.strictObject({
    webhook: z.url().describe('POSTed the event as JSON; any 2xx is success'),
    timeout: durationSchema.prefault('30s'),
  }),
]);

const targetBase = {
  name: name.describe('unique within the ring; used in status, audit and messages'),
  audience: z.enum(['all', 'verifiers']).default('all').describe('all: signs and verifies; verifiers: Ed25519 verify-only'),
  fields: fieldMapping,
  hooks: z
    .array(restartHookSchema)
    .default([])
    .describe("run after every verified write of this target (e.g. restart the processes that read it); a failure is retried on the next command until it succeeds once"),
};

export const dotenvTargetSchema = z.strictObject({
  ...targetBase,
  provider: z.literal('dotenv'),
  path: z.string().min(1).describe('the .env file, relative to the config file; links are followed'),
  dialect: z.enum(DIALECTS).default('dotenv').describe('who reads the file: dotenv libraries, docker --env-file, or systemd EnvironmentFile'),
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

export const vaultKv2TargetSchema = z.strictObject({
  ...targetBase,
  provider: z.literal('vault-kv2'),
  mount: z.string().min(1).regex(/^[^/].*[^/]$|^[^/]$/, 'no leading or trailing "/"').describe('the KV v2 mount, e.g. secret'),
  path: z.string().min(1).regex(/^[^/].*[^/]$|^[^/]$/, 'no leading or trailing "/"').describe('the secret path inside the mount'),
  address: z.url().optional().describe('default $VAULT_ADDR'),
  namespace: z.string().min(1).optional().describe('Vault Enterprise namespace; default $VAULT_NAMESPACE'),
  caFile: z.string().min(1).optional().describe('PEM CA bundle; default $VAULT_CACERT'),
  auth: z
    .discriminatedUnion('method', [
      z.strictObject({ method: z.literal('token'), tokenEnv: envName.optional().describe('default VAULT_TOKEN') }),
      z.strictObject({ method: z.literal('approle'), roleIdEnv: envName, secretIdEnv: envName, mount: z.string().min(1).optional() }),
    ])
    .optional(),
});

const dnsName = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a Kubernetes object name');

export const kubernetesSecretTargetSchema = z.strictObject({
  ...targetBase,
  provider: z.literal('kubernetes-secret'),
  namespace: dnsName,
  secret: dnsName.describe("the Secret's name"),
  kubeconfig: z.string().min(1).optional().describe('default: $KUBECONFIG, ~/.kube/config, or in-cluster'),
  context: z.string().min(1).optional(),
  restartDeployments: z.array(dnsName).default([]).describe('Deployments to roll after every write (kubectl rollout restart); the same as restart entries of kind Deployment'),
  restart: z
    .array(z.strictObject({ kind: z.enum(WORKLOAD_KINDS), name: dnsName }))
    .default([])
    .describe("workloads in the Secret's namespace to restart after every write: Deployments, StatefulSets, DaemonSets (the restartedAt annotation) and Argo Rollouts (spec.restartAt); the next step waits until their controllers finish"),
  restartTimeout: durationSchema.prefault('10m').describe('a restart not finished after this is reported as failing (it blocks either way)'),
});

export const awsSecretsManagerTargetSchema = z.strictObject({
  ...targetBase,
  provider: z.literal('aws-secrets-manager'),
  secretId: z.string().min(1).describe('secret name or ARN; SecretString must be a JSON object'),
  region: z.string().min(1).optional().describe("default: the SDK's (AWS_REGION, profile)"),
  endpoint: z.url().optional().describe('endpoint override (VPC endpoint, LocalStack)'),
  allowManagedRotation: z.boolean().default(false).describe('write even though AWS-managed rotation is enabled'),
});

export const targetSchema = z.discriminatedUnion('provider', [dotenvTargetSchema, vaultKv2TargetSchema, kubernetesSecretTargetSchema, awsSecretsManagerTargetSchema]);

/** Where a target lives, for "two targets on one place" checks and messages. */
export function targetLocation(target: TargetConfig): string {
  switch (target.provider) {
    case 'dotenv':
      return `file ${target.path}`;
    case 'vault-kv2':
      return `vault ${target.address ?? '$VAULT_ADDR'} ${target.namespace ?? ''}/${target.mount}/data/${target.path}`;
    case 'kubernetes-secret':
      return `kubernetes ${target.kubeconfig ?? '(default kubeconfig)'} ${target.context ?? ''} ${target.namespace}/${target.secret}`;
    case 'aws-secrets-manager':
      return `aws ${target.endpoint ?? ''} ${target.region ?? '(default region)'} ${target.secretId}`;
  }
}
export type TargetConfig = z.infer<typeof targetSchema>;
export type RestartHook = z.infer<typeof restartHookSchema>;

export { redisEndpointSchema, stemEndpointSchema, stemStoreKind, type RedisEndpoint, type StemEndpoint } from '../endpoints/schema.js';
export { stemSignalsSchema, type StemSignals } from '../stem/signals-schema.js';
import { redisEndpointSchema } from '../endpoints/schema.js';
import { stemSignalsSchema } from '../stem/signals-schema.js';

const soakGateSchema = z.strictObject({
  type: z.literal('soak'),
  name: name.optional(),
  duration: durationSchema.optional().describe('defaults to policy.propagate (before activate) or policy.drain (before drop)'),
});
const approvalGateSchema = z.strictObject({
  type: z.literal('approval'),
  name: name.optional(),
  requireDistinctApprover: z.boolean().default(false).describe('the approver may not be whoever started the rotation'),
  approvalTtl: durationSchema.optional().describe('an approval older than this no longer counts'),
});
const stemWorkersGateSchema = z.strictObject({
  type: z.literal('stem-workers'),
  name: name.optional(),
  minWorkers: z.number().int().min(0).default(1).describe('fewer live workers than this → wait (none at all → unknown)'),
  staleAfter: durationSchema.optional().describe('a heartbeat older than this is a dead worker; default 3 × heartbeatInterval'),
  startupAllowance: durationSchema
    .prefault('1s')
    .describe('how long a process may run between reading its environment and stamping startedAt; it must have started at least this long after the write'),
  clockSkew: durationSchema.prefault('5s').describe('assumed clock difference when it cannot be measured (a heartbeat without TTL, no Redis TIME)'),
});
export const DLQ_CLASSES = ['unknown-key', 'missing-headers', 'mismatch', 'mismatch-mutated', 'bad-base64', 'other'] as const;
const stemDlqGateSchema = z.strictObject({
  type: z.literal('stem-dlq'),
  name: name.optional(),
  block: z.array(z.enum(DLQ_CLASSES)).default(['unknown-key', 'missing-headers', 'mismatch']).describe('error classes that block'),
  maxEntries: z.number().int().positive().default(200_000).describe('scan at most this many dead letters; more → unknown'),
  clockSkew: durationSchema.prefault('1m').describe('keep reading this far past the phase start (deadAt is per-worker clock)'),
});
const stemBacklogGateSchema = z.strictObject({
  type: z.literal('stem-backlog'),
  name: name.optional(),
  batchSize: z.number().int().min(10).max(20_000).default(2000).describe('envelopes per server-side batch'),
});
const stemSignersGateSchema = z.strictObject({
  type: z.literal('stem-signers'),
  name: name.optional(),
  grace: durationSchema.prefault('1m').describe('envelopes enqueued this soon after the activate write may still carry the old key'),
  allowIdle: z.boolean().default(false).describe('pass when no signed envelope was enqueued since the activation (otherwise unknown)'),
  batchSize: z.number().int().min(10).max(20_000).default(2000).describe('entries per XRANGE'),
});
const prometheusGateSchema = z
  .strictObject({
    type: z.literal('prometheus'),
    name: name.optional(),
    url: z.url().describe('Prometheus base URL, e.g. http://prometheus:9090'),
    query: z.string().min(1).describe('instant query that must return exactly 0, e.g. sum(increase(stem_tasks_signature_invalid_total[15m]))'),
    liveness: z.string().min(1).optional().describe('a query that must return data when `query` returns none (proves the pipeline is alive)'),
    timeout: durationSchema.prefault('5s'),
    bearerTokenEnv: z.string().min(1).optional(),
    username: z.string().min(1).optional(),
    passwordEnv: z.string().min(1).optional(),
  })
  .refine((gate) => !(gate.bearerTokenEnv && gate.username), 'use either bearer or basic auth');
export const gateSchema = z.discriminatedUnion('type', [soakGateSchema, approvalGateSchema, stemWorkersGateSchema, stemDlqGateSchema, stemBacklogGateSchema, stemSignersGateSchema, prometheusGateSchema]);
export type GateConfig = z.infer<typeof gateSchema>;

/** The built-in gate's name (policy.windows, policy.freeze): no configured gate may take it. */
export const WINDOW_GATE = 'window';

/** An IANA time zone the runtime knows (Intl), e.g. "Europe/Berlin"; default UTC. */
const timezoneSchema = z
  .string()
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, 'not an IANA time zone (e.g. "Europe/Berlin", "America/New_York", "UTC")')
  .default('UTC');

const changeWindowSchema = z.strictObject({
  cron: z.string().min(1).describe('when the window opens (cron expression in `timezone`), e.g. "0 2 * * 1-5"'),
  duration: durationSchema.describe('how long it stays open'),
  timezone: timezoneSchema,
});

export const policySchema = z
  .strictObject({
    maxAge: durationSchema.prefault('30d').describe('`run` starts a rotation when the active key is older'),
    propagate: durationSchema.prefault('10m').describe('soak between add-new and activate'),
    drain: durationSchema.prefault('1h').describe('soak between activate and drop; exceed the longest retry/delay horizon'),
    autoAdvance: z.boolean().default(false).describe('`run` advances rotations whose gates pass'),
    startWindow: changeWindowSchema.optional().describe('deprecated: the same as windows.start'),
    windows: z
      .strictObject({
        start: changeWindowSchema.optional().describe('`run` starts rotations, and `rotate start` may, only inside this window'),
        activate: changeWindowSchema.optional().describe('the new key is activated only inside this window'),
        drop: changeWindowSchema.optional().describe('the old key is dropped only inside this window'),
      })
      .prefault({})
      .describe('outside its window a step waits (`run`) or is refused (by hand) unless `--override window --reason …`; aborting never waits'),
    freeze: z
      .array(
        z.strictObject({
          from: z.string().describe('first day (YYYY-MM-DD) or local time (YYYY-MM-DDTHH:mm)'),
          to: z.string().describe('last day (inclusive), or the local time the freeze ends'),
          timezone: timezoneSchema,
          reason: z.string().optional(),
        }),
      )
      .default([])
      .describe('no rotation step starts during a freeze (e.g. a holiday freeze); aborting and revoke are never frozen'),
    stuckAfter: durationSchema.optional().describe('a rotation whose gates have blocked this long after its phase began is reported stuck'),
  })
  .prefault({});
export type Policy = z.infer<typeof policySchema>;

export const ringSchema = z.strictObject({
  algorithm: z.enum(ALGORITHMS).default('hmac-sha256'),
  keyIdPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._@/+~-]*$/, 'use letters, digits and . _ @ / + ~ - (new key ids must be written unquoted in every env-file dialect)')
    .optional()
    .describe('new key ids are <prefix><yyyymmdd>-<4 hex>; defaults to "<ring>-"'),
  policy: policySchema,
  stem: stemSignalsSchema.optional().describe("where Stem's evidence lives (Redis, PostgreSQL or SQLite); enables the stem-* gates"),
  gates: z
    .strictObject({
      beforeActivate: z.array(gateSchema).optional().describe('default: soak, plus stem-workers and stem-dlq when `stem` is set'),
      beforeDrop: z.array(gateSchema).optional().describe('default: soak, plus stem-workers, stem-signers, stem-backlog and stem-dlq when `stem` is set'),
    })
    .prefault({}),
  targets: z.array(targetSchema).min(1, 'a ring needs at least one target'),
});
type ParsedRing = z.infer<typeof ringSchema>;
/** A ring after defaults: every gate slot is filled in. */
export type RingConfig = Omit<ParsedRing, 'gates'> & { readonly name: string; readonly gates: { beforeActivate: GateConfig[]; beforeDrop: GateConfig[] } };

const defaultGateSets = new Map<boolean, RingConfig['gates']>();

/** Parsed once per process (a config of 10,000 rings asks 20,000 times); the gates are shared, never changed. */
export function defaultGates(withStem: boolean): RingConfig['gates'] {
  let gates = defaultGateSets.get(withStem);
  if (!gates) {
    const slot = (types: GateConfig['type'][]) => z.array(gateSchema).parse(types.map((type) => ({ type })));
    gates = withStem
      ? { beforeActivate: slot(['soak', 'stem-workers', 'stem-dlq']), beforeDrop: slot(['soak', 'stem-workers', 'stem-signers', 'stem-backlog', 'stem-dlq']) }
      : { beforeActivate: slot(['soak']), beforeDrop: slot(['soak']) };
    defaultGateSets.set(withStem, gates);
  }
  return { beforeActivate: [...gates.beforeActivate], beforeDrop: [...gates.beforeDrop] };
}
const leaseTtlSchema = durationSchema
  .prefault('5m')
  .describe("how long a dead orchestrator's lease blocks others; every save renews it");

export const storeSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('file'), dir: z.string().min(1).default('.stem-rotor'), leaseTtl: leaseTtlSchema }),
    redisEndpointSchema.extend({ type: z.literal('redis'), prefix: z.string().min(1).default('stem-rotor').describe('key prefix'), leaseTtl: leaseTtlSchema }).strict(),
  ])
  .prefault({ type: 'file' });
export type StoreConfig = z.infer<typeof storeSchema>;

const sinkBase = {
  name: name.optional().describe('for metrics and messages; default "<type>-<position>"'),
  events: z.array(z.enum(NOTICE_KINDS)).min(1).optional().describe('only these kinds; default all'),
  rings: z.array(name).min(1).optional().describe('only these rings; default all'),
};

export const notifySinkSchema = z.discriminatedUnion('type', [
  z.strictObject({
    ...sinkBase,
    type: z.literal('webhook'),
    url: z.url().describe('POSTed each event as JSON, signed per the Standard Webhooks spec'),
    secretEnv: envName.describe('environment variable holding the signing secret (whsec_…)'),
    timeout: durationSchema.prefault('10s'),
  }),
  z.strictObject({
    ...sinkBase,
    type: z.literal('slack'),
    urlEnv: envName.describe('environment variable holding the incoming-webhook URL (it is a credential)'),
    timeout: durationSchema.prefault('10s'),
  }),
  z.strictObject({
    ...sinkBase,
    type: z.literal('exec'),
    command: z.array(z.string().min(1)).min(1).describe('run without a shell, the event as JSON on stdin'),
    timeout: durationSchema.prefault('30s'),
  }),
]);
export type NotifySink = z.infer<typeof notifySinkSchema>;

export const configSchema = z.strictObject({
  version: z.literal(1).default(1),
  store: storeSchema,
  notify: z.array(notifySinkSchema).default([]).describe('where rotation events go: rotation started, phase advanced, gate blocked (once per step and reason), approval needed, stuck, revoke, failure'),
  rings: z.record(name, ringSchema).refine((rings) => Object.keys(rings).length > 0, 'define at least one ring'),
});
export type RawConfig = z.infer<typeof configSchema>;

/** The `stem:` section of a ring: where Stem's evidence lives and how its fleet is set up. */
import * as z from 'zod';
import { durationSchema } from '../duration.js';
import { stemEndpointSchema } from '../endpoints/schema.js';
import { isTimeZone } from './timestamps.js';

export const stemSignalsSchema = z.strictObject({
  namespace: z.string().min(1).default('stem').describe("the broker's namespace: <ns>:stream/delayed/dead keys"),
  backendNamespace: z.string().min(1).optional().describe("the result backend's namespace (<ns>:worker:heartbeat*); defaults to `namespace`, as StemRedisAdapter sets one value for both"),
  workerNamespace: z.string().min(1).default('stem').describe("the workers' own (heartbeat/control) namespace: heartbeats whose `namespace` differs are not counted; <ns>.control.* queues are Stem's"),
  broker: stemEndpointSchema.describe('STEM_BROKER_URL: queued, delayed and dead-lettered envelopes, broadcasts'),
  backend: stemEndpointSchema.optional().describe('STEM_RESULT_BACKEND_URL: heartbeats; defaults to the broker'),
  heartbeatInterval: durationSchema.prefault('10s').describe("the workers' heartbeat interval"),
  heartbeatTtl: durationSchema.prefault('60s').describe("the backend's heartbeat TTL (Stem's heartbeatTtl): with it each worker's clock offset is measured"),
  fixedConsumerNames: z
    .boolean()
    .default(false)
    .describe('every worker subscribing to broadcasts has a stable consumerName, so no worker re-reads a broadcast channel from its first entry'),
  timezone: z
    .string()
    .refine(isTimeZone, 'an IANA time zone such as Europe/Berlin')
    .optional()
    .describe('the zone of Stem processes older than 0.2, which wrote times without a zone; without it such a time counts as the latest instant it could mean'),
});
export type StemSignals = z.infer<typeof stemSignalsSchema>;

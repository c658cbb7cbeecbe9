/** Stem's `Envelope.toJson()` shape (stem-interop §2.6, §3.3), with `Envelope.fromJson` defaults. */
import * as z from 'zod';
import { toNumber } from './json.js';

export const envelopeSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  args: z.record(z.string(), z.unknown()).default({}),
  headers: z.record(z.string(), z.string()).default({}),
  enqueuedAt: z.string().min(1),
  notBefore: z.string().nullable().default(null),
  priority: z.preprocess(toNumber, z.number().int().default(0)),
  attempt: z.preprocess(toNumber, z.number().int().default(0)),
  maxRetries: z.preprocess(toNumber, z.number().int().default(0)),
  visibilityTimeout: z.preprocess(toNumber, z.number().int().nullable().default(null)),
  queue: z.string().default('default'),
  meta: z.record(z.string(), z.unknown()).default({}),
});

export type Envelope = z.infer<typeof envelopeSchema>;

/** Key order of Stem's `Envelope.toJson`, so printed envelopes look like Stem's. */
export function envelopeToJson(envelope: Envelope): Envelope {
  return {
    id: envelope.id,
    name: envelope.name,
    args: envelope.args,
    headers: envelope.headers,
    enqueuedAt: envelope.enqueuedAt,
    notBefore: envelope.notBefore,
    priority: envelope.priority,
    attempt: envelope.attempt,
    maxRetries: envelope.maxRetries,
    visibilityTimeout: envelope.visibilityTimeout,
    queue: envelope.queue,
    meta: envelope.meta,
  };
}

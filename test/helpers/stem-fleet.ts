/**
 * A simulated Stem fleet that writes exactly Stem's Redis formats (stem-interop §2.6, §3.3, §4):
 * producers XADD signed envelopes (fields in Stem's order), retries sit in the delayed ZSET, workers
 * heartbeat, consume through the consumer group, verify with the keys they loaded at start, and
 * dead-letter failures. Workers "restart" by re-reading their target file.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { signingEnvOf } from '../../src/envfile/codec.js';
import type { Envelope } from '../../src/stem/envelope.js';
import { envelopeToJson } from '../../src/stem/envelope.js';
import { stemKeys } from '../../src/stem/redis-keys.js';
import { envelopeFromFields, streamFields } from '../../src/stem/stream-format.js';
import { stringifyStemJson } from '../../src/stem/json.js';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';
import { loadStemSigningConfig, type SigningEnv, type StemSigningConfig } from '../../src/stem/signing-env.js';

export function loadEnvFile(path: string): StemSigningConfig {
  const env: SigningEnv = {};
  Object.assign(env, signingEnvOf(readFileSync(path), path));
  return loadStemSigningConfig(env);
}

export { envelopeFromFields, streamFields } from '../../src/stem/stream-format.js';

let sequence = 0;

export function newEnvelope(queue: string, now: Date, overrides: Partial<Envelope> = {}): Envelope {
  sequence += 1;
  return { id: `task-${process.pid}-${sequence}`, name: 'demo.task', args: { n: sequence }, headers: {}, enqueuedAt: now.toISOString(), notBefore: null, priority: 0, attempt: 0, maxRetries: 3, visibilityTimeout: null, queue, meta: {}, ...overrides };
}

export class StemFleet {
  readonly keys: ReturnType<typeof stemKeys>;
  readonly broker: Redis;
  readonly backend: Redis;
  readonly now: () => Date;

  constructor(broker: Redis, backend: Redis, namespace = 'stem', now: () => Date = () => new Date()) {
    this.broker = broker;
    this.backend = backend;
    this.keys = stemKeys(namespace);
    this.now = now;
  }

  async enqueue(config: StemSigningConfig, queue = 'default', overrides: Partial<Envelope> = {}): Promise<Envelope> {
    const envelope = signEnvelope(newEnvelope(queue, this.now(), overrides), config);
    await this.broker.xadd(this.keys.stream(queue, envelope.priority), '*', ...streamFields(envelope));
    return envelope;
  }

  /** A broadcast as Stem's Redis broker publishes it: `<ns>:broadcast:<channel>`, queue = channel, plus `delivery`. */
  async broadcast(config: StemSigningConfig | null, channel: string, overrides: Partial<Envelope> = {}): Promise<string> {
    const envelope = newEnvelope(channel, this.now(), overrides);
    const signed = config ? signEnvelope(envelope, config) : envelope;
    return (await this.broker.xadd(this.keys.broadcast(channel), '*', ...streamFields(signed), 'delivery', 'at-least-once')) as string;
  }

  /** A subscriber with a consumer name: its group `<ns>:broadcast:<channel>:<consumer>` starts at the first entry, as Stem's does. */
  async subscribe(channel: string, consumer: string): Promise<string> {
    const group = `${this.keys.broadcast(channel)}:${consumer}`;
    await this.broker.xgroup('CREATE', this.keys.broadcast(channel), group, '0', 'MKSTREAM');
    return group;
  }

  /** Reads (and acknowledges, unless `ack` is false) what the group has not yet received. */
  async receive(channel: string, group: string, consumer: string, ack = true): Promise<number> {
    const stream = this.keys.broadcast(channel);
    const reply = (await this.broker.xreadgroup('GROUP', group, consumer, 'COUNT', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
    const ids = (reply?.[0]?.[1] ?? []).map(([id]) => id);
    if (ack && ids.length > 0) await this.broker.xack(stream, group, ...ids);
    return ids.length;
  }

  async delay(config: StemSigningConfig, queue: string, notBefore: Date): Promise<Envelope> {
    const envelope = signEnvelope(newEnvelope(queue, this.now(), { notBefore: notBefore.toISOString() }), config);
    await this.broker.zadd(this.keys.delayed(queue), notBefore.getTime(), stringifyStemJson(envelopeToJson(envelope)));
    return envelope;
  }

  /** `deadAt`: a Date (Stem ≥ 0.2 writes UTC with `Z`), or the exact text (stem_redis 0.1.0 wrote local zone-less times). */
  async deadLetter(queue: string, envelope: Envelope, error: string, keyId: string | null, deadAt: Date | string = this.now()): Promise<void> {
    const entry = { envelope: envelopeToJson(envelope), reason: 'signature-invalid', meta: { error, ...(keyId === null ? {} : { keyId }) }, deadAt: typeof deadAt === 'string' ? deadAt : deadAt.toISOString() };
    await this.broker.lpush(this.keys.dead(queue), stringifyStemJson(entry));
  }
}

export class SimulatedWorker {
  config: StemSigningConfig;
  startedAt: Date;
  readonly id: string;
  readonly fleet: StemFleet;
  private readonly envPath: string;
  readonly pid: number;
  /** The worker (heartbeat/control) namespace it reports in its heartbeat JSON. */
  workerNamespace = 'stem';
  /** How far this worker's host clock is ahead of the fleet's (negative: behind). */
  clockAheadMs = 0;

  /** The time on this worker's own clock. */
  private localNow(): Date {
    return new Date(this.fleet.now().getTime() + this.clockAheadMs);
  }

  constructor(fleet: StemFleet, id: string, envPath: string, pid: number) {
    this.fleet = fleet;
    this.id = id;
    this.envPath = envPath;
    this.pid = pid;
    this.config = loadEnvFile(envPath);
    this.startedAt = fleet.now();
  }

  /** A process restart: keys are read again, startedAt moves. */
  restart(): void {
    this.config = loadEnvFile(this.envPath);
    this.startedAt = this.localNow();
  }

  async heartbeat(): Promise<void> {
    const beat = {
      workerId: this.id,
      namespace: this.workerNamespace,
      timestamp: this.localNow().toISOString(),
      isolateCount: 1,
      inflight: 0,
      lastLeaseRenewal: null,
      version: '1',
      queues: [],
      extras: { host: 'test-host', hostname: 'test-host', pid: this.pid, startedAt: this.startedAt.toISOString() },
    };
    await this.fleet.backend.set(this.fleet.keys.heartbeat(this.id), JSON.stringify(beat), 'PX', 60_000);
    await this.fleet.backend.sadd(this.fleet.keys.heartbeatSet, this.id);
  }

  /** XREADGROUP a batch, verify each envelope like Stem's worker, ack or dead-letter it. */
  async consume(queue = 'default', count = 100): Promise<{ ok: number; dead: number }> {
    const { keys, broker } = this.fleet;
    const stream = keys.stream(queue);
    const group = keys.group(queue);
    try {
      await broker.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
    const reply = (await broker.xreadgroup('GROUP', group, this.id, 'COUNT', count, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
    let ok = 0;
    let dead = 0;
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        const envelope = envelopeFromFields(fields);
        const verdict = verifyEnvelope(envelope, this.config);
        await broker.xack(stream, group, id);
        if (verdict.ok) ok += 1;
        else {
          dead += 1;
          await this.fleet.deadLetter(queue, envelope, verdict.message, verdict.keyId);
        }
      }
    }
    return { ok, dead };
  }
}

/** stem-workers, stem-dlq and stem-backlog against a real redis-server holding Stem-format data. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { GateResult } from '../../src/gates/index.js';
import { createHarness, type Harness } from '../helpers/ring.js';
import { RedisServer } from '../helpers/redis-server.js';
import { SimulatedWorker, StemFleet, loadEnvFile, streamFields, newEnvelope } from '../helpers/stem-fleet.js';
import { signEnvelope } from '../../src/stem/signer.js';

const MINUTE = 60_000;
let server: RedisServer;
let broker: Redis;
let backend: Redis;

beforeAll(async () => {
  server = await new RedisServer().start();
  broker = server.client(0);
  backend = server.client(1);
});

afterAll(async () => {
  broker.disconnect();
  backend.disconnect();
  await server.stop();
});

beforeEach(async () => {
  await broker.flushall();
});

function ring(gates: Record<string, unknown>, stem: Record<string, unknown> = {}): { h: Harness; fleet: StemFleet } {
  const h = createHarness({ stem: { broker: { url: server.url(0) }, backend: { url: server.url(1) }, ...stem }, gates: { beforeActivate: [], beforeDrop: [], ...gates } });
  return { h, fleet: new StemFleet(broker, backend, 'stem', () => h.clock.now()) };
}

async function gate(h: Harness, name: string): Promise<GateResult> {
  const status = await h.engine().status();
  const found = status.gates.find((g) => g.name === name);
  if (!found) throw new Error(`no gate ${name} in ${JSON.stringify(status.gates)}`);
  return found;
}

describe('stem-workers', () => {
  const gates = { beforeActivate: [{ type: 'stem-workers', minWorkers: 2 }] };

  it('no heartbeat data is unknown, never a pass', async () => {
    const { h } = ring(gates);
    await h.engine().start();
    expect(await gate(h, 'stem-workers')).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('no live worker heartbeats') });
  });

  it('waits for workers that started before the add-new write, naming them; passes once all restarted', async () => {
    const { h, fleet } = ring(gates);
    const a = new SimulatedWorker(fleet, 'worker-a', h.path('workers'), 101);
    const b = new SimulatedWorker(fleet, 'worker-b', h.path('workers'), 102);
    h.clock.increment(MINUTE);
    await h.engine().start();
    h.clock.increment(MINUTE);
    await a.heartbeat();
    await b.heartbeat();
    const waiting = await gate(h, 'stem-workers');
    expect(waiting.verdict).toBe('wait');
    expect(waiting.reason).toMatch(/2 of 2 live workers have not restarted/);
    expect(waiting.reason).toContain(`worker-a (host test-host, pid 101, started ${a.startedAt.toISOString()})`);

    a.restart();
    await a.heartbeat();
    expect((await gate(h, 'stem-workers')).reason).toMatch(/1 of 2 .*worker-b/);
    b.restart();
    await b.heartbeat();
    expect(await gate(h, 'stem-workers')).toMatchObject({ verdict: 'pass', evidence: expect.objectContaining({ live: 2, restarted: 2 }) });
  });

  it("reads heartbeats under the backend's namespace and counts only the ring's worker namespace", async () => {
    const { h } = ring(gates, { backendNamespace: 'results', workerNamespace: 'billing' });
    const results = new StemFleet(broker, backend, 'results', () => h.clock.now());
    const workers = ['worker-a', 'worker-b', 'other-app'].map((id, index) => new SimulatedWorker(results, id, h.path('workers'), 101 + index));
    for (const worker of workers) worker.workerNamespace = worker.id === 'other-app' ? 'stem' : 'billing';
    h.clock.increment(MINUTE);
    await h.engine().start();
    h.clock.increment(MINUTE);
    for (const worker of workers.slice(0, 2)) worker.restart();
    for (const worker of workers) await worker.heartbeat();
    expect(await gate(h, 'stem-workers')).toMatchObject({ verdict: 'pass', evidence: expect.objectContaining({ live: 2, otherNamespace: ['other-app'] }) });
    // the broker's namespace holds no heartbeats: without backendNamespace nothing is seen, and it says where it looked
    const { h: unset } = ring(gates, { workerNamespace: 'billing' });
    await unset.engine().start();
    expect(await gate(unset, 'stem-workers')).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('in worker namespace "billing" under stem:worker:heartbeats') });
  });

  it('a fast restarter (2 s after the write, as Reloader does) counts: clocks are measured through Redis', async () => {
    const { h, fleet } = ring(gates);
    await h.engine().start();
    const a = new SimulatedWorker(fleet, 'worker-a', h.path('workers'), 1);
    const b = new SimulatedWorker(fleet, 'worker-b', h.path('workers'), 2);
    h.clock.increment(2000);
    a.restart();
    b.restart();
    await a.heartbeat();
    await b.heartbeat();
    const result = await gate(h, 'stem-workers');
    expect(result).toMatchObject({ verdict: 'pass', evidence: expect.objectContaining({ restarted: 2, startupAllowanceMs: 1000 }) });
  });

  it("a worker host whose clock is ahead is judged on Redis's clock; a start inside the allowance is said to be unprovable, with the next step", async () => {
    const { h, fleet } = ring(gates);
    await h.engine().start();
    const ahead = new SimulatedWorker(fleet, 'worker-ahead', h.path('workers'), 1);
    const fine = new SimulatedWorker(fleet, 'worker-fine', h.path('workers'), 2);
    ahead.clockAheadMs = 3000; // its startedAt reads 3.5 s after the write; on Redis's clock it is 0.5 s
    h.clock.increment(500);
    ahead.restart();
    h.clock.increment(1500);
    fine.restart();
    await ahead.heartbeat();
    await fine.heartbeat();
    const result = await gate(h, 'stem-workers');
    expect(result.verdict).toBe('wait');
    expect(result.reason).toMatch(/^cannot prove 1 of 2 live workers loaded the new file: worker-ahead \(host test-host, pid 1, started [^)]+\) restarted (4\d\d|5\d\d)ms after the write, within the start-up allowance \(1000ms\) plus clock uncertainty \(\d+ms\)\. /);
    expect(result.reason).toContain('Restart them once more, or, if you know they read it: stem-rotor rotate advance ring --override stem-workers --reason');
    expect(result.evidence).toMatchObject({ restarted: 1, cannotProve: [expect.objectContaining({ workerId: 'worker-ahead', clockOffsetMs: expect.any(Number) })] });
    const offset = (result.evidence as { cannotProve: { clockOffsetMs: number }[] }).cannotProve[0]?.clockOffsetMs as number;
    expect(Math.abs(offset - 3000 - ((result.evidence as { rotorClockOffsetMs: number }).rotorClockOffsetMs))).toBeLessThan(200);
    ahead.restart();
    await ahead.heartbeat();
    h.clock.increment(1500);
    ahead.restart();
    await ahead.heartbeat();
    expect((await gate(h, 'stem-workers')).verdict).toBe('pass');
  });

  /** Two workers restarted 2 s after the add-new write, each heartbeat key then changed by `tamper`. */
  async function restartedTwoSecondsAfterTheWrite(tamper: (heartbeatKey: string) => Promise<unknown>): Promise<Harness> {
    const { h, fleet } = ring(gates);
    await h.engine().start();
    const workers = [new SimulatedWorker(fleet, 'worker-a', h.path('workers'), 1), new SimulatedWorker(fleet, 'worker-b', h.path('workers'), 2)];
    h.clock.increment(2000);
    for (const worker of workers) {
      worker.restart();
      await worker.heartbeat();
      await tamper(fleet.keys.heartbeat(worker.id));
    }
    return h;
  }

  it("a heartbeat TTL longer than stem.heartbeatTtl is detected: clocks are not measured, clockSkew applies, and the reason says so", async () => {
    const h = await restartedTwoSecondsAfterTheWrite((key) => backend.pexpire(key, 90_000)); // Stem configured with a 90 s heartbeatTtl
    const result = await gate(h, 'stem-workers');
    expect(result).toMatchObject({ verdict: 'wait', reason: expect.stringMatching(/^cannot prove 2 of 2 live workers loaded the new file: .*restarted 2\d\d\dms after the write, within the start-up allowance \(1000ms\) plus clock uncertainty \(5000ms\) \(clocks not measured, clockSkew 5000ms assumed: a heartbeat's remaining TTL exceeds stem\.heartbeatTtl/) });
    expect(result.evidence).toHaveProperty('heartbeatTtlMismatch');
  });

  it('a heartbeat whose clock cannot be measured (no TTL) falls back to clockSkew', async () => {
    const h = await restartedTwoSecondsAfterTheWrite((key) => backend.persist(key));
    // a start 2 s after the write is inside the assumed 5 s clock difference: unprovable, never "not restarted" for good
    expect(await gate(h, 'stem-workers')).toMatchObject({ verdict: 'wait', reason: expect.stringMatching(/^cannot prove 2 of 2 live workers loaded the new file: .*restarted 2\d\d\dms after the write.*plus clock uncertainty \(5000ms\)\. Restart them once more/) });
  });

  it('ignores expired and stale heartbeats; too few live workers waits', async () => {
    const { h, fleet } = ring(gates);
    await h.engine().start();
    h.clock.increment(MINUTE);
    const live = new SimulatedWorker(fleet, 'live', h.path('workers'), 1);
    await live.heartbeat();
    await backend.sadd(fleet.keys.heartbeatSet, 'expired'); // its key is gone
    const stale = new SimulatedWorker(fleet, 'stale', h.path('workers'), 2);
    h.clock.increment(-MINUTE);
    await stale.heartbeat();
    h.clock.increment(MINUTE);
    const result = await gate(h, 'stem-workers');
    expect(result).toMatchObject({ verdict: 'wait', reason: 'only 1 live workers, need at least 2' });
    expect(result.evidence).toMatchObject({ dead: ['expired', 'stale'] });
  });

  it('an unreadable heartbeat is unknown', async () => {
    const { h, fleet } = ring(gates);
    await h.engine().start();
    await backend.set(fleet.keys.heartbeat('broken'), '{not json', 'PX', 60_000);
    await backend.sadd(fleet.keys.heartbeatSet, 'broken');
    expect(await gate(h, 'stem-workers')).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('broken') });
  });
});

describe('stem-dlq', () => {
  const gates = { beforeActivate: [{ type: 'stem-dlq' }] };

  async function added(stem: Record<string, unknown> = {}) {
    const { h, fleet } = ring(gates, stem);
    const producer = loadEnvFile(h.path('producers'));
    h.clock.increment(10 * MINUTE);
    const started = await h.engine().start();
    h.clock.increment(MINUTE);
    return { h, fleet, producer, newId: started.newKey?.id as string };
  }

  /** The wall clock of a worker at UTC−5 (stem_redis 0.1.0 wrote deadAt like this, without a zone). */
  const newYorkWall = (at: Date) => new Date(at.getTime() - 5 * 3_600_000).toISOString().slice(0, -1);

  it('a fresh dead letter with a zone-less deadAt blocks: read in stem.timezone, or as the latest instant it could mean', async () => {
    for (const stem of [{}, { timezone: 'America/New_York' }]) {
      await broker.flushall();
      const { h, fleet, producer, newId } = await added(stem);
      const envelope = signEnvelope(newEnvelope('emails', h.clock.now()), producer);
      await fleet.deadLetter('emails', envelope, `unknown signing key "${newId}"`, newId, newYorkWall(h.clock.now()));
      const result = await gate(h, 'stem-dlq');
      expect(result).toMatchObject({ verdict: 'wait', evidence: expect.objectContaining({ blocking: 1, zoneLessTimes: 1 }) });
      expect(result.reason).toContain('timezone' in stem ? 'read in America/New_York' : 'set stem.timezone');
    }
  });

  it('with stem.timezone, a zone-less dead letter from before the phase does not block', async () => {
    const { h, fleet, producer, newId } = await added({ timezone: 'America/New_York' });
    const envelope = signEnvelope(newEnvelope('emails', h.clock.now()), producer);
    await fleet.deadLetter('emails', envelope, `unknown signing key "${newId}"`, newId, newYorkWall(new Date(h.clock.now().getTime() - 60 * MINUTE)));
    expect(await gate(h, 'stem-dlq')).toMatchObject({ verdict: 'pass', evidence: expect.objectContaining({ blocking: 0, zoneLessTimes: 1 }) });
  });

  it('unknown-key failures for the ring since the add-new write block, grouped by key, class and queue', async () => {
    const { h, fleet, producer, newId } = await added();
    const envelope = signEnvelope(newEnvelope('emails', h.clock.now()), producer);
    await fleet.deadLetter('emails', envelope, `unknown signing key "${newId}"`, newId);
    await fleet.deadLetter('emails', envelope, `unknown signing key "${newId}"`, newId);
    const result = await gate(h, 'stem-dlq');
    expect(result.verdict).toBe('wait');
    expect(result.reason).toContain(`2× unknown-key key "${newId}" on emails`);
    expect(result.evidence?.groups).toEqual([expect.objectContaining({ keyId: newId, errorClass: 'unknown-key', queue: 'emails', count: 2 })]);
  });

  it('failures before the phase, of foreign keys, and broker-mutated mismatches do not block', async () => {
    const { h, fleet, producer } = await added();
    const envelope = signEnvelope(newEnvelope('default', h.clock.now()), producer);
    await fleet.deadLetter('default', envelope, `unknown signing key "${h.initialKey.id}"`, h.initialKey.id, new Date(h.clock.now().getTime() - 30 * MINUTE));
    await fleet.deadLetter('default', envelope, 'unknown signing key "other-ring-key"', 'other-ring-key');
    await fleet.deadLetter('default', { ...envelope, attempt: 1 }, 'signature mismatch', h.initialKey.id);
    const result = await gate(h, 'stem-dlq');
    expect(result.verdict).toBe('pass');
    expect(result.reason).toMatch(/1 broker-mutated "signature mismatch" entries are not caused by the rotation/);
  });

  it('missing signature headers block; a mismatch without mutation marks blocks', async () => {
    const { h, fleet } = await added();
    const unsigned = newEnvelope('default', h.clock.now());
    await fleet.deadLetter('default', unsigned, 'missing signature headers', null);
    expect((await gate(h, 'stem-dlq')).reason).toContain('missing-headers key "none"');
    await broker.flushall();
    await fleet.deadLetter('default', signEnvelope(unsigned, loadEnvFile(h.path('producers'))), 'signature mismatch', h.initialKey.id);
    expect((await gate(h, 'stem-dlq')).reason).toContain('mismatch key');
  });

  it('unparseable dead letters in the window are unknown', async () => {
    const { h, fleet } = await added();
    await broker.lpush(fleet.keys.dead('default'), '{broken');
    expect(await gate(h, 'stem-dlq')).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('could not be parsed') });
  });

  it('a scan cut short by maxEntries is unknown', async () => {
    const { h, fleet } = ring({ beforeActivate: [{ type: 'stem-dlq', maxEntries: 2 }] });
    await h.engine().start();
    const envelope = signEnvelope(newEnvelope('default', h.clock.now()), loadEnvFile(h.path('producers')));
    for (let i = 0; i < 3; i += 1) await fleet.deadLetter('default', envelope, 'unknown signing key "foreign"', 'foreign');
    expect(await gate(h, 'stem-dlq')).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('raise maxEntries') });
  });
});

describe('stem-backlog', () => {
  const gates = { beforeDrop: [{ type: 'stem-backlog', batchSize: 50 }] };

  async function activated() {
    const { h, fleet } = ring(gates);
    const oldProducer = loadEnvFile(h.path('producers'));
    const engine = h.engine();
    await engine.start();
    await engine.advance();
    h.clock.increment(MINUTE);
    return { h, fleet, oldProducer, newProducer: loadEnvFile(h.path('producers')) };
  }

  it('counts old-key envelopes in streams, priority streams, pending entries and delayed sets', async () => {
    const { h, fleet, oldProducer, newProducer } = await activated();
    h.clock.increment(-30 * MINUTE); // enqueued before the activate write
    for (let i = 0; i < 120; i += 1) await fleet.enqueue(oldProducer, 'default');
    await fleet.enqueue(oldProducer, 'default', { priority: 3 });
    await fleet.delay(oldProducer, 'emails', new Date(h.clock.now().getTime() + 60 * MINUTE));
    h.clock.increment(30 * MINUTE);
    for (let i = 0; i < 10; i += 1) await fleet.enqueue(newProducer, 'default');
    // 100 delivered but not acknowledged: pending
    await broker.xgroup('CREATE', fleet.keys.stream('default'), fleet.keys.group('default'), '0');
    await broker.xreadgroup('GROUP', fleet.keys.group('default'), 'w1', 'COUNT', 100, 'STREAMS', fleet.keys.stream('default'), '>');
    const result = await gate(h, 'stem-backlog');
    expect(result.verdict).toBe('wait');
    expect(result.evidence).toMatchObject({ signed: 122, signedAfter: 0, scanned: 132 });
    const sources = result.evidence?.sources as { source: string; signed: number }[];
    expect(sources.map((s) => `${s.source}:${s.signed}`).sort()).toEqual(['delayed:1', 'pending:100', 'stream:1', 'stream:20']);
  });

  it('reports envelopes enqueued after the activate write as a signer that has not reloaded', async () => {
    const { h, fleet, oldProducer } = await activated();
    await fleet.enqueue(oldProducer, 'default');
    const result = await gate(h, 'stem-backlog');
    expect(result).toMatchObject({ verdict: 'wait', evidence: expect.objectContaining({ signed: 1, signedAfter: 1 }) });
    expect(result.reason).toContain('a signer has not reloaded its keys');
  });

  it('passes once old-key envelopes are consumed and acknowledged; ignores control queues', async () => {
    const { h, fleet, oldProducer } = await activated();
    h.clock.increment(-10 * MINUTE);
    for (let i = 0; i < 5; i += 1) await fleet.enqueue(oldProducer, 'default');
    h.clock.increment(10 * MINUTE);
    await broker.xadd(fleet.keys.stream('stem.control.broadcast'), '*', ...streamFields(newEnvelope('stem.control.broadcast', h.clock.now(), { headers: { 'stem-control': '1' } })));
    const worker = new SimulatedWorker(fleet, 'w', h.path('workers'), 1);
    expect(await worker.consume('default')).toEqual({ ok: 5, dead: 0 });
    expect(await gate(h, 'stem-backlog')).toMatchObject({ verdict: 'pass', reason: expect.stringContaining('none of') });
  });

  it("skips exactly Stem's own control queues: an application queue named like one is backlog", async () => {
    const { h, fleet, oldProducer } = await activated();
    // dashboard-signed control commands (old key) in Stem's control queues: never verified by workers
    for (const queue of ['stem.control.broadcast', 'stem.control.worker.w-1', 'stem.control.reply.5f0c6a7e-1d2b-4c3a-9e8f-0a1b2c3d4e5f']) await fleet.enqueue(oldProducer, queue);
    expect(await gate(h, 'stem-backlog')).toMatchObject({ verdict: 'pass' });
    for (const queue of ['fleet.control.commands', 'ops.control.broadcast', 'stem.control.workers']) await fleet.enqueue(oldProducer, queue);
    const blocked = await gate(h, 'stem-backlog');
    expect(blocked).toMatchObject({ verdict: 'wait', evidence: expect.objectContaining({ signed: 3 }) });
    const sources = (blocked.evidence as { sources: { key: string }[] }).sources.map((source) => source.key);
    expect(sources).toEqual(expect.arrayContaining([fleet.keys.stream('fleet.control.commands'), fleet.keys.stream('ops.control.broadcast'), fleet.keys.stream('stem.control.workers')]));
  });

  it("a blocked advance keeps what the count remembered in the ring's state, for the next process (run --once)", async () => {
    const { h, fleet, oldProducer } = await activated();
    h.clock.increment(-10 * MINUTE);
    for (let i = 0; i < 3; i += 1) await fleet.enqueue(oldProducer, 'default');
    h.clock.increment(10 * MINUTE);
    // the workers' group exists already (a new group makes the next count read the stream whole)
    await broker.xgroup('CREATE', fleet.keys.stream('default'), fleet.keys.group('default'), '0');
    await expect(h.engine().advance()).rejects.toThrow(/still signed with/);
    const kept = (await h.deps().store.load('ring'))?.gateProgress?.['stem-backlog'] as { key: string; streams: Record<string, { notable: string }> } | undefined;
    expect(kept?.key).toMatch(/^[\w-]{43}$/);
    expect(kept?.streams[fleet.keys.stream('default')]?.notable.split(' ')).toHaveLength(3);
    // the key is a hash: no broker URL in the state
    expect(JSON.stringify(kept)).not.toContain('redis://');
    // consumed and acknowledged: the next count, built on this one, passes and says what it counted
    const worker = new SimulatedWorker(fleet, 'w', h.path('workers'), 1);
    expect(await worker.consume('default')).toEqual({ ok: 3, dead: 0 });
    const passed = await gate(h, 'stem-backlog');
    expect(passed).toMatchObject({ verdict: 'pass', evidence: expect.objectContaining({ streamsReadWhole: 0 }) });
    expect(passed.reason).toMatch(/^none of \d+ queued envelopes read or remembered \(the rest unchanged since the last count\) is signed with/);
  });

  it('unparseable headers are unknown', async () => {
    const { h, fleet } = await activated();
    await broker.xadd(fleet.keys.stream('default'), '*', 'id', 'x', 'headers', '{oops', 'enqueuedAt', h.clock.now().toISOString());
    expect((await gate(h, 'stem-backlog')).verdict).toBe('unknown');
  });
});

describe('stem-backlog on broadcast channels', () => {
  const gates = { beforeActivate: [], beforeDrop: [{ type: 'stem-backlog' }] };

  async function activated(stem: Record<string, unknown> = {}) {
    const { h, fleet } = ring(gates, stem);
    const oldProducer = loadEnvFile(h.path('producers'));
    await h.engine().start();
    await h.engine().advance();
    h.clock.increment(MINUTE);
    return { h, fleet, oldProducer, newProducer: loadEnvFile(h.path('producers')) };
  }

  it("a group's undelivered or pending old-key broadcasts block; retained ones block unless subscribers have fixed names; unsigned queue events never count", async () => {
    for (const fixed of [false, true]) {
      await broker.flushall();
      const { h, fleet, oldProducer, newProducer } = await activated({ fixedConsumerNames: fixed });
      const group = await fleet.subscribe('cache-flush', 'billing-1');
      for (let i = 0; i < 2; i += 1) await fleet.broadcast(oldProducer, 'cache-flush');
      await fleet.broadcast(newProducer, 'cache-flush');
      await fleet.broadcast(null, 'stem:events:default', { name: '__stem.queue.event__' });
      const undelivered = await gate(h, 'stem-backlog');
      expect(undelivered).toMatchObject({ verdict: 'wait', reason: expect.stringMatching(/^2 queued envelopes are still signed/) });
      expect((undelivered.evidence as { sources: unknown[] }).sources).toEqual(
        expect.arrayContaining([expect.objectContaining({ key: fleet.keys.broadcast('cache-flush'), source: 'broadcast-undelivered', group, signed: 2 })]),
      );
      expect(await fleet.receive('cache-flush', group, 'billing-1', false)).toBe(3);
      expect((await gate(h, 'stem-backlog')).evidence?.sources).toEqual(expect.arrayContaining([expect.objectContaining({ source: 'broadcast-pending', group, signed: 2 })]));
      await broker.xack(fleet.keys.broadcast('cache-flush'), group, ...(await broker.xrange(fleet.keys.broadcast('cache-flush'), '-', '+')).map(([id]) => id));
      const consumed = await gate(h, 'stem-backlog');
      if (fixed) {
        expect(consumed).toMatchObject({ verdict: 'pass', reason: expect.stringContaining('2 old-key broadcasts stay in their streams') });
      } else {
        expect(consumed.verdict).toBe('wait');
        expect(consumed.reason).toContain(`2 broadcasts signed with ${oldProducer.activeKeyId} stay in ${fleet.keys.broadcast('cache-flush')} (2)`);
        expect(consumed.reason).toContain('stem-rotor broadcast resign ring CHANNEL --dry-run');
      }
    }
  });
});

describe('stem-signers', () => {
  const gates = { beforeActivate: [], beforeDrop: [{ type: 'stem-signers', grace: '30s' }] };

  async function activated(extra: Record<string, unknown> = {}) {
    const { h, fleet } = ring({ ...gates, beforeDrop: [{ type: 'stem-signers', grace: '30s', ...extra }] });
    const oldProducer = loadEnvFile(h.path('producers'));
    await h.engine().start();
    await h.engine().advance();
    return { h, fleet, oldProducer, newProducer: loadEnvFile(h.path('producers')) };
  }

  it('waits during the grace period, then passes when every envelope since carries the new key', async () => {
    const { h, fleet, newProducer } = await activated();
    h.clock.increment(10_000);
    expect((await gate(h, 'stem-signers')).verdict).toBe('wait');
    h.clock.increment(MINUTE);
    for (const queue of ['default', 'emails']) await fleet.enqueue(newProducer, queue);
    expect(await gate(h, 'stem-signers')).toMatchObject({ verdict: 'pass', evidence: expect.objectContaining({ signedWithNewKey: 2, offending: [] }) });
  });

  it('a producer that never reloaded blocks, naming queue, count and times; its restart (new-key envelopes after) clears it', async () => {
    const { h, fleet, oldProducer, newProducer } = await activated();
    h.clock.increment(MINUTE);
    await fleet.enqueue(newProducer, 'default');
    for (let i = 0; i < 3; i += 1) await fleet.enqueue(oldProducer, 'billing');
    const blocked = await gate(h, 'stem-signers');
    expect(blocked.verdict).toBe('wait');
    expect(blocked.reason).toContain(`a signer has not switched to "${newProducer.activeKeyId}"`);
    expect(blocked.reason).toContain(`3 on billing signed with "${oldProducer.activeKeyId}" (first ${h.clock.now().toISOString()}, last ${h.clock.now().toISOString()})`);
    expect(blocked.reason).toContain('Restart the producers, Beat and dashboard that feed billing');
    h.clock.increment(1000);
    await fleet.enqueue(newProducer, 'billing');
    expect((await gate(h, 'stem-signers')).verdict).toBe('wait'); // no quiet grace period since the last old-key envelope yet
    h.clock.increment(30_000);
    await fleet.enqueue(newProducer, 'billing');
    expect(await gate(h, 'stem-signers')).toMatchObject({ verdict: 'pass', reason: expect.stringContaining('billing had old-key envelopes, followed by new-key ones') });
  });

  it('two producers on one queue, one never restarted: interleaved envelopes keep blocking whichever came last', async () => {
    const { h, fleet, oldProducer, newProducer } = await activated();
    h.clock.increment(MINUTE);
    for (let i = 0; i < 4; i += 1) {
      await fleet.enqueue(oldProducer, 'billing');
      h.clock.increment(10_000);
      await fleet.enqueue(newProducer, 'billing'); // the newest envelope carries the new key
      expect((await gate(h, 'stem-signers')).verdict).toBe('wait');
    }
  });

  it('envelopes enqueued before the window (delayed ones promoted, retries) are not evidence; no signed envelope at all is unknown unless allowIdle', async () => {
    const { h, fleet, oldProducer } = await activated();
    const before = new Date(h.clock.now().getTime() - 10 * MINUTE);
    h.clock.increment(MINUTE);
    await fleet.enqueue(oldProducer, 'default', { enqueuedAt: before.toISOString() });
    expect(await gate(h, 'stem-signers')).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('no signed envelope was enqueued since') });
    const idle = await activated({ allowIdle: true });
    idle.h.clock.increment(MINUTE);
    expect((await gate(idle.h, 'stem-signers')).verdict).toBe('pass');
  });

  it('reads incrementally: a blocked advance keeps its stream cursors and counts in the ring state, and the next run goes on from there', async () => {
    const { h, fleet, oldProducer, newProducer } = await activated();
    h.clock.increment(MINUTE);
    await fleet.enqueue(oldProducer, 'billing');
    await expect(h.engine().advance()).rejects.toThrow(/a signer has not switched/);
    const saved = (await h.deps().store.load('ring'))?.gateProgress?.['stem-signers'] as { cursors: Record<string, string>; offending: Record<string, { count: number }> };
    const stream = fleet.keys.stream('billing');
    expect(saved.cursors[stream]).toMatch(/^\d+-\d+$/);
    expect(saved.offending.billing?.count).toBe(1);
    // the entry already read is gone from Redis: only the carried count can still know it
    await broker.xdel(stream, saved.cursors[stream] as string);
    await fleet.enqueue(oldProducer, 'billing');
    const again = await gate(h, 'stem-signers');
    expect(again.reason).toContain('2 on billing');
    h.clock.increment(31_000);
    await fleet.enqueue(newProducer, 'billing');
    await h.engine().advance();
    expect((await h.deps().store.load('ring'))?.rotation).toBeNull();
  });
});


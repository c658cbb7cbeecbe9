/** Faults never let a Redis gate pass: server down or killed mid-scan, wrong credentials, TLS mismatch. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateResult } from '../../src/gates/index.js';
import { createHarness, type Harness } from '../helpers/ring.js';
import { RedisServer } from '../helpers/redis-server.js';
import { StemFleet, SimulatedWorker, loadEnvFile } from '../helpers/stem-fleet.js';
import { createTestPki, type TestPki } from '../helpers/tls.js';

async function gates(h: Harness): Promise<readonly GateResult[]> {
  return (await h.engine().status()).gates;
}

const workersGate = { beforeActivate: [{ type: 'stem-workers', minWorkers: 1 }], beforeDrop: [] };

/** A ring in phase `added` whose single worker restarted: the workers gate passes when Redis is reachable. */
async function readyRing(stem: Record<string, unknown>, server: RedisServer, clientOptions: Parameters<RedisServer['client']>[1] = {}) {
  const h = createHarness({ stem, gates: workersGate });
  await h.engine().start();
  h.clock.increment(60_000);
  const redis = server.client(0, clientOptions);
  const fleet = new StemFleet(redis, redis, 'stem', () => h.clock.now());
  const worker = new SimulatedWorker(fleet, 'w1', h.path('workers'), 7);
  await worker.heartbeat();
  redis.disconnect();
  return h;
}

describe('Redis down', () => {
  it('stopped before the gate runs → unknown, naming the redacted URL', async () => {
    const server = await new RedisServer().start();
    const h = await readyRing({ broker: { url: `redis://:hunter2@127.0.0.1:${server.port}/0` } }, server);
    await server.stop();
    const [gate] = await gates(h);
    expect(gate).toMatchObject({ verdict: 'unknown' });
    expect(gate?.reason).toContain(`redis://:***@127.0.0.1:${server.port}/0`);
    expect(gate?.reason).not.toContain('hunter2');
  });

  it('killed in the middle of a backlog scan → unknown', async () => {
    const server = await new RedisServer().start();
    const h = createHarness({ stem: { broker: { url: server.url(0) } }, gates: { beforeActivate: [], beforeDrop: [{ type: 'stem-backlog', batchSize: 100 }] } });
    const producer = loadEnvFile(h.path('producers'));
    await h.engine().start();
    await h.engine().advance();
    const redis = server.client(0);
    const fleet = new StemFleet(redis, redis);
    const pipeline = redis.pipeline();
    for (let i = 0; i < 3000; i += 1) pipeline.xadd(fleet.keys.stream(`q${i % 30}`), '*', 'headers', `{"stem-signature-key":"${producer.activeKeyId}"}`, 'enqueuedAt', '2020-01-01T00:00:00.000Z');
    await pipeline.exec();
    redis.disconnect();
    const evaluation = gates(h);
    setTimeout(() => void server.stop(), 15);
    const [gate] = await evaluation;
    expect(gate?.verdict).not.toBe('pass');
    expect(['unknown', 'wait']).toContain(gate?.verdict);
    await server.stop();
  });
});

describe('authentication', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await new RedisServer(['--requirepass', 'right-password']).start();
    const admin = server.client(0, { password: 'right-password' });
    await admin.acl('SETUSER', 'rotor', 'on', '>rotor-password', '~*', '+@all');
    admin.disconnect();
  });
  afterAll(() => server.stop());

  it('a wrong or missing password is unknown; the right one (from an env var) passes', async () => {
    const h = await readyRing({ broker: { url: server.url(0), passwordEnv: 'TEST_REDIS_PASSWORD' } }, server, { password: 'right-password' });
    process.env.TEST_REDIS_PASSWORD = 'wrong-password';
    const [wrong] = await gates(h);
    expect(wrong).toMatchObject({ verdict: 'unknown' });
    expect(JSON.stringify(wrong)).not.toContain('wrong-password');
    process.env.TEST_REDIS_PASSWORD = 'right-password';
    expect((await gates(h))[0]).toMatchObject({ verdict: 'pass' });
    delete process.env.TEST_REDIS_PASSWORD;
    expect((await gates(h))[0]).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('$TEST_REDIS_PASSWORD is not set') });
  });

  it('an ACL user authenticates with username and password', async () => {
    process.env.TEST_ROTOR_PASSWORD = 'rotor-password';
    const h = await readyRing({ broker: { url: server.url(0), username: 'rotor', passwordEnv: 'TEST_ROTOR_PASSWORD' } }, server, { password: 'right-password' });
    expect((await gates(h))[0]).toMatchObject({ verdict: 'pass' });
    process.env.TEST_ROTOR_PASSWORD = 'nope';
    expect((await gates(h))[0]).toMatchObject({ verdict: 'unknown' });
  });
});

describe('TLS (rediss://, mutual TLS)', () => {
  let pki: TestPki;
  let server: RedisServer;
  beforeAll(async () => {
    pki = createTestPki();
  });
  afterAll(() => server.stop());

  it('connects with the right CA and client certificate; a wrong CA or no client certificate is unknown', async () => {
    server = await new RedisServer(['--tls-cert-file', pki.serverCert, '--tls-key-file', pki.serverKey, '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', 'yes']).start();
    const url = `rediss://127.0.0.1:${server.port}/0`;
    const tlsClient = { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } };
    const h = createHarness({ stem: { broker: { url, ...tlsClient } }, gates: workersGate });
    await h.engine().start();
    h.clock.increment(60_000);
    const { Redis } = await import('ioredis');
    const { readFileSync } = await import('node:fs');
    const direct = new Redis({ host: '127.0.0.1', port: server.port, tls: { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) } });
    await new SimulatedWorker(new StemFleet(direct, direct, 'stem', () => h.clock.now()), 'w1', h.path('workers'), 9).heartbeat();
    direct.disconnect();
    expect((await gates(h))[0]).toMatchObject({ verdict: 'pass' });

    const wrongCa = createHarness({ stem: { broker: { url, tls: { ...tlsClient.tls, ca: pki.otherCa } } }, gates: workersGate });
    await wrongCa.engine().start();
    expect((await gates(wrongCa))[0]).toMatchObject({ verdict: 'unknown', reason: expect.stringMatching(/certificate|self.signed|verify/i) });

    const noClientCert = createHarness({ stem: { broker: { url, tls: { ca: pki.ca } } }, gates: workersGate });
    await noClientCert.engine().start();
    expect((await gates(noClientCert))[0]).toMatchObject({ verdict: 'unknown' });
  });
});

/** The prometheus gate against a real Prometheus scraping stem_tasks_signature_invalid_total. */
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrometheusGate, type PrometheusOptions } from '../../src/gates/prometheus.js';
import type { GateContext, GateResult } from '../../src/gates/types.js';
import { PrometheusServer, SignatureInvalidExporter } from '../helpers/prometheus.js';
import { freePort } from '../helpers/redis-server.js';

const SERIES = 'sum(stem_tasks_signature_invalid_total)';
const context = () => ({ now: new Date() }) as GateContext;
const evaluate = (options: Partial<PrometheusOptions> & Pick<PrometheusOptions, 'url'>): Promise<GateResult> =>
  createPrometheusGate({ name: 'prometheus', query: SERIES, timeoutMs: 2000, ...options }).evaluate(context());

let exporter: SignatureInvalidExporter;
let prometheus: PrometheusServer;

beforeAll(async () => {
  exporter = await new SignatureInvalidExporter().start();
  prometheus = await new PrometheusServer().start(exporter.port);
}, 60_000);

afterAll(async () => {
  await prometheus.stop();
  await exporter.stop();
});

describe('prometheus gate', () => {
  it('passes when the query returns exactly 0, waits when it does not', async () => {
    await prometheus.waitFor(SERIES, (values) => values[0] === 0);
    expect(await evaluate({ url: prometheus.url })).toMatchObject({ verdict: 'pass', reason: `${SERIES} = 0 (1 series)` });
    exporter.value = 3;
    await prometheus.waitFor(SERIES, (values) => values[0] === 3);
    expect(await evaluate({ url: prometheus.url })).toMatchObject({ verdict: 'wait', reason: expect.stringContaining('is not 0') });
    exporter.value = 0;
    await prometheus.waitFor(SERIES, (values) => values[0] === 0);
  });

  it('no data is unknown unless a liveness query returns data', async () => {
    const query = 'sum(stem_tasks_that_do_not_exist_total)';
    expect(await evaluate({ url: prometheus.url, query })).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('no data') });
    expect(await evaluate({ url: prometheus.url, query, liveness: 'up{job="stem"} == 1' })).toMatchObject({ verdict: 'pass' });
    expect(await evaluate({ url: prometheus.url, query, liveness: 'up{job="nothing"}' })).toMatchObject({ verdict: 'unknown' });
  });

  it('an invalid query is an error, not a pass', async () => {
    await expect(evaluate({ url: prometheus.url, query: 'sum(' })).rejects.toThrow(/Prometheus answered 400/);
  });

  it('an unreachable Prometheus or one that never answers fails (the engine reports unknown)', async () => {
    await expect(evaluate({ url: `http://127.0.0.1:${await freePort()}` })).rejects.toThrow();
    const silent = createServer(() => undefined);
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
    const started = Date.now();
    await expect(evaluate({ url: `http://127.0.0.1:${port}`, timeoutMs: 300 })).rejects.toThrow(/timeout|aborted/i);
    expect(Date.now() - started).toBeLessThan(2000);
    silent.closeAllConnections();
    silent.close();
  });
});

describe('prometheus gate authentication', () => {
  it('basic auth against a Prometheus web config; bearer tokens are sent as Authorization', async () => {
    const secured = await new PrometheusServer().start(exporter.port, { username: 'rotor', password: 'prom-pass' });
    try {
      process.env.TEST_PROM_PASSWORD = 'prom-pass';
      expect(await evaluate({ url: secured.url, username: 'rotor', passwordEnv: 'TEST_PROM_PASSWORD' })).toMatchObject({ verdict: 'pass' });
      process.env.TEST_PROM_PASSWORD = 'wrong';
      await expect(evaluate({ url: secured.url, username: 'rotor', passwordEnv: 'TEST_PROM_PASSWORD' })).rejects.toThrow(/401/);
      await expect(evaluate({ url: secured.url })).rejects.toThrow(/401/);
    } finally {
      await secured.stop();
    }

    let seen: string | undefined;
    const proxy = createServer((request, response) => {
      seen = request.headers.authorization;
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [0, '0'] }] } }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    process.env.TEST_PROM_TOKEN = 'token-123';
    expect(await evaluate({ url: `http://127.0.0.1:${port}/prom/`, bearerTokenEnv: 'TEST_PROM_TOKEN' })).toMatchObject({ verdict: 'pass' });
    expect(seen).toBe('Bearer token-123');
    proxy.close();
  });
});

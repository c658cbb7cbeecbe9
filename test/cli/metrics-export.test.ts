/**
 * Metrics in every mode, through the built CLI: `run --once --metrics-file` (node_exporter textfile,
 * checked by promtool) and `--pushgateway` (a local receiver in the Pushgateway's API shape), with
 * the timestamp gauges a "the job stopped running" alert needs. A failed export is exit 1 with one
 * line, never a failed rotation.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, findLeaks, secretsIn } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

interface Received {
  method: string;
  url: string;
  body: string;
}

/** Answers like a Pushgateway (200 on PUT/POST to /metrics/job/…), or with `status` when set. */
function pushgateway() {
  const received: Received[] = [];
  let status = 200;
  const server = createServer((request: IncomingMessage, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ method: request.method ?? '', url: request.url ?? '', body });
      response.writeHead(status).end(status === 200 ? '' : 'pushgateway is sad\n');
    });
  });
  return {
    received,
    fail: (code: number) => (status = code),
    start: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function value(text: string, metric: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${metric} `) || candidate.startsWith(`${metric}{`));
  if (!line) throw new Error(`${metric} not in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('metrics from run --once', () => {
  const gateway = pushgateway();
  let url = '';
  beforeAll(async () => {
    url = await gateway.start();
  });
  afterAll(() => gateway.stop());

  it('writes a textfile promtool accepts, with the timestamps alerts need, atomically and readable by the exporter', () => {
    const dir = tempDir('stem-rotor-metrics-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    const file = join(dir, 'textfile', 'stem-rotor.prom');
    execFileSync('mkdir', [join(dir, 'textfile')]);
    const before = Date.now() / 1000;
    const result = cli(['run', '--once', '--config', config, '--metrics-file', file]);
    expect(result.code, result.stderr).toBe(0);
    const text = readFileSync(file, 'utf8');
    execFileSync('promtool', ['check', 'metrics'], { input: text }); // throws on a malformed exposition
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readdirSync(join(dir, 'textfile'))).toEqual(['stem-rotor.prom']); // no temp file left
    expect(value(text, 'stem_rotor_last_pass_timestamp_seconds')).toBeGreaterThanOrEqual(Math.floor(before));
    expect(value(text, 'stem_rotor_last_success_timestamp_seconds{ring="demo"}')).toBeGreaterThanOrEqual(Math.floor(before));
    const created = value(text, 'stem_rotor_active_key_created_timestamp_seconds{ring="demo"}');
    expect(value(text, 'stem_rotor_next_rotation_due_timestamp_seconds{ring="demo"}') - created).toBe(30 * 86_400);
    expect(text).toContain('stem_rotor_ring_phase{ring="demo",phase="stable"} 1');
    expect(text).not.toContain('stem_rotor_phase_entered_timestamp_seconds{'); // stable: no phase timer

    // a second pass replaces the file; a rotation in progress has its phase timer
    expect(cli(['rotate', 'start', 'demo', '--config', config]).code).toBe(0);
    expect(cli(['run', '--once', '--config', config, '--metrics-file', file]).code).toBe(0);
    const rotating = readFileSync(file, 'utf8');
    expect(rotating).toContain('stem_rotor_ring_phase{ring="demo",phase="added"} 1');
    expect(value(rotating, 'stem_rotor_phase_entered_timestamp_seconds{ring="demo"}')).toBeGreaterThanOrEqual(Math.floor(before));
    const secrets = [...secretsIn(join(dir, 'producers.env')), ...secretsIn(join(dir, 'workers.env'))];
    expect(findLeaks(secrets, [text, rotating, result.stdout, result.stderr])).toEqual([]);
  });

  it('pushes to a Pushgateway; a failed push or an unwritable file is exit 1 with one line, and the rotation still happened', async () => {
    const dir = tempDir('stem-rotor-metrics-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    const pushed = await cliAsync(['run', '--once', '--config', config, '--pushgateway', url]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const push = gateway.received.at(-1);
    expect(push).toMatchObject({ method: 'PUT', url: '/metrics/job/stem-rotor' });
    expect(push?.body).toContain('stem_rotor_last_success_timestamp_seconds{ring="demo"}');

    gateway.fail(500);
    expect(cli(['rotate', 'start', 'demo', '--config', config]).code).toBe(0);
    const failed = await cliAsync(['run', '--once', '--config', config, '--pushgateway', url, '--metrics-file', join(dir, 'no', 'such', 'dir.prom')]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/metrics not exported: pushgateway http:\/\/127\.0\.0\.1:\d+: push failed/);
    expect(failed.stderr).toMatch(/metrics not exported: .*no\/such\/dir\.prom/);
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const status = JSON.parse(cli(['status', 'demo', '--config', config, '--json']).stdout) as { phase: string };
    expect(status.phase).toBe('added');
    gateway.fail(200);
  });
});

/**
 * Notifications through the built CLI: a Standard Webhooks sink verified by a local HTTPS receiver,
 * a Slack incoming webhook and an exec sink get rotation started, approval needed (once, however
 * often `run` finds it), phase advanced and revoke; a sink that cannot be reached never fails the
 * rotation but is logged, audited and counted in the metrics; no payload carries key material.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync, findLeaks, secretsIn } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { createTestPki, type TestPki } from '../helpers/tls.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

interface Received {
  path: string;
  body: string;
  verified: boolean;
}

let pki: TestPki;
let server: Server;
let base = '';
const received: Received[] = [];

beforeAll(async () => {
  pki = createTestPki();
  server = createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      let verified = false;
      try {
        new Webhook(SECRET).verify(body, request.headers as Record<string, string>);
        verified = true;
      } catch {
        verified = false;
      }
      received.push({ path: request.url ?? '', body, verified });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('notifications', () => {
  it('webhook (signed), Slack and exec sinks hear what happens, once; a broken sink never fails the rotation', async () => {
    const dir = tempDir('stem-rotor-notify-');
    expect((await cliAsync(['init', '--dir', dir])).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    const log = join(dir, 'events.jsonl');
    const script = join(dir, 'page.sh');
    writeFileSync(script, `#!/bin/sh\ncat >> "${log}"\n`);
    chmodSync(script, 0o755);
    const notify = `notify:\n  - type: webhook\n    url: ${base}/stem-rotor\n    secretEnv: HOOK_SECRET\n  - type: slack\n    urlEnv: SLACK_URL\n    events: [approval-needed, revoke]\n  - type: exec\n    command: ["${script}"]\n  - name: broken\n    type: webhook\n    url: https://127.0.0.1:9/unreachable\n    secretEnv: HOOK_SECRET\n    events: [phase-advanced]\n`;
    const text = readFileSync(config, 'utf8').replace('version: 1\n', `version: 1\n${notify}`).replace(/( +)beforeActivate:\n +- type: soak\n/, '$1beforeActivate:\n$1  - type: approval\n');
    writeFileSync(config, text);
    const env = { HOOK_SECRET: SECRET, SLACK_URL: `${base}/slack/T000/B000/XXXX`, NODE_EXTRA_CA_CERTS: pki.ca };
    const run = async (...args: string[]) => {
      const result = await cliAsync([...args, '--config', config], { env });
      expect(result.code, result.stderr).toBe(0);
      return result;
    };
    const outputs = [
      await run('rotate', 'start', 'demo'),
      await run('run', '--once'),
      await run('run', '--once'),
      await run('approve', 'demo', '--reason', 'CHG-1', '--as', 'alice'),
    ];
    const advanced = await run('run', '--once', '--metrics-file', join(dir, 'stem-rotor.prom'));
    outputs.push(advanced);
    expect(advanced.stderr).toMatch(/notification broken \(phase-advanced\) failed: notification broken https:\/\/127\.0\.0\.1:9: /);
    expect(readFileSync(join(dir, 'stem-rotor.prom'), 'utf8')).toContain('stem_rotor_notifications_failed_total{sink="broken"} 1');
    const status = JSON.parse((await run('status', 'demo', '--json')).stdout) as { keys: { id: string; active: boolean }[] };
    const old = status.keys.find((key) => !key.active)?.id as string;
    outputs.push(await run('revoke', 'demo', old, '--reason', 'pasted in chat', '--yes'));

    const hooks = received.filter((request) => request.path === '/stem-rotor');
    expect(hooks.every((request) => request.verified)).toBe(true);
    expect(hooks.map((request) => JSON.parse(request.body).type)).toEqual(['stem-rotor.rotation-started', 'stem-rotor.approval-needed', 'stem-rotor.phase-advanced', 'stem-rotor.revoke']);
    expect(JSON.parse(hooks[3]?.body ?? '{}').data).toMatchObject({ ring: 'demo', kind: 'revoke', severity: 'warning', revokedKeyId: old });
    const slack = received.filter((request) => request.path.startsWith('/slack/')).map((request) => JSON.parse(request.body).text as string);
    expect(slack).toHaveLength(2);
    expect(slack[0]).toMatch(/^:warning: \*stem-rotor\* ring demo: advance blocked by approval \(wait\): the activate of rotation rot-\S+ needs a recorded approval/);
    expect(slack[1]).toMatch(new RegExp(`^:warning: \\*stem-rotor\\* ring demo: revoke done, revoked ${old}; phase stable`));
    expect(readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line).type)).toEqual(hooks.map((request) => JSON.parse(request.body).type));

    const audit = JSON.parse((await run('audit', 'demo', '--json')).stdout) as { action: string; outcome: string; details?: Record<string, unknown> }[];
    expect(audit.filter((event) => event.action === 'notify')).toEqual([expect.objectContaining({ outcome: 'failed', details: expect.objectContaining({ sink: 'broken', kind: 'phase-advanced' }) })]);
    const checked = await cliAsync(['check', 'demo', '--config', config], { env });
    expect(checked.stdout).toContain('notify webhook-1 (webhook ' + base + '): configured\n');
    expect(checked.stdout).toMatch(/notify broken \(webhook https:\/\/127\.0\.0\.1:9\): configured; 1 failed deliveries in the last 24h, last: notification broken https:\/\/127\.0\.0\.1:9: /);
    const unset = await cliAsync(['check', 'demo', '--config', config], { env: { ...env, SLACK_URL: '' } });
    expect(unset.code).toBe(1);
    expect(unset.stdout).toContain('notify slack-2 (slack via $SLACK_URL): $SLACK_URL is not set: nothing can be delivered');
    const secrets = [...secretsIn(join(dir, 'producers.env')), ...secretsIn(join(dir, 'workers.env')), SECRET];
    expect(findLeaks(secrets, [...received.map((request) => request.body), readFileSync(log, 'utf8'), ...outputs.flatMap((output) => [output.stdout, output.stderr.replaceAll(SECRET, '')])])).toEqual([]);
  });
});

/**
 * Restarts that finish, against the Kubernetes API emulator and real processes: workloads of every
 * kind are restarted after the Secret's write and the next step waits until their controllers have
 * finished; exec and webhook hooks run as the same recorded step (a failure is retried on the next
 * command, exactly once more); Events on the Secret tell `kubectl describe` what happened.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStoreDir, parseConfig } from '../../src/config/load.js';
import type { RingConfig } from '../../src/config/schema.js';
import { RingEngine } from '../../src/engine/engine.js';
import { GateBlockedError } from '../../src/errors.js';
import { generateKey } from '../../src/stem/keys.js';
import { formatKeyList } from '../../src/stem/signing-env.js';
import { createFileStore } from '../../src/store/file.js';
import { findLeaks } from '../helpers/cli.js';
import { SimulatedClock } from '../helpers/clock.js';
import { tempDir } from '../helpers/fs.js';
import { seededRandom } from '../helpers/random.js';
import { KubernetesEmulator } from '../emulators/kubernetes.js';

let kube: KubernetesEmulator;
const webhook: { bodies: string[]; status: number; url: string; stop: () => Promise<void> } = { bodies: [], status: 200, url: '', stop: async () => undefined };

beforeAll(async () => {
  kube = await new KubernetesEmulator().start();
  const server = createServer((request: IncomingMessage, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      webhook.bodies.push(body);
      response.writeHead(webhook.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  webhook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/restart-workers?token=hook-secret`;
  webhook.stop = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await kube.stop();
  await webhook.stop();
});

function setup(name: string, extra: { hooks?: unknown[] } = {}) {
  const dir = tempDir('stem-rotor-restarts-');
  const key = generateKey('hmac-sha256', 'ring-20260101-0001', seededRandom(name));
  const keys = formatKeyList([{ id: key.id, material: key.secret as Buffer }]);
  writeFileSync(join(dir, 'workers.env'), `STEM_SIGNING_KEYS=${keys}\nSTEM_SIGNING_ACTIVE_KEY=${key.id}\n`);
  kube.putSecret('stem', name, { STEM_SIGNING_KEYS: keys, STEM_SIGNING_ACTIVE_KEY: key.id });
  kube.putWorkload('Deployment', 'stem', `${name}-producers`);
  kube.putWorkload('StatefulSet', 'stem', `${name}-beat`, 1);
  kube.putWorkload('Rollout', 'stem', `${name}-api`, 3);
  const restart = [
    { kind: 'Deployment', name: `${name}-producers` },
    { kind: 'StatefulSet', name: `${name}-beat` },
    { kind: 'Rollout', name: `${name}-api` },
  ];
  const document = {
    store: { type: 'file', dir: 'state' },
    rings: {
      ring: {
        keyIdPrefix: 'ring-',
        policy: { propagate: '1m', drain: '1m' },
        gates: { beforeActivate: [{ type: 'soak' }], beforeDrop: [{ type: 'soak' }] },
        targets: [
          { name: 'workers', provider: 'dotenv', path: 'workers.env', ...(extra.hooks ? { hooks: extra.hooks } : {}) },
          { name: 'producers', provider: 'kubernetes-secret', kubeconfig: kube.kubeconfig(), namespace: 'stem', secret: name, restart, restartTimeout: '5m' },
        ],
      },
    },
  };
  const config = parseConfig(document, join(dir, 'stem-rotor.json'));
  const clock = new SimulatedClock();
  const store = createFileStore({ dir: fileStoreDir(config), clock });
  const engine = () => new RingEngine(config.rings[0] as RingConfig, { store, clock, randomBytes: seededRandom(`${name}:run`), actor: { user: 't', host: 'h' } });
  const events = () => kube.events.filter((event) => (event.involvedObject as { name: string }).name === name).map((event) => `${String(event.type)} ${String(event.reason)}`);
  return { dir, clock, engine, events, secrets: [keys] };
}

describe('restarts that finish', () => {
  it('the next step waits until every restarted workload has rolled out; Events tell kubectl describe', async () => {
    const { clock, engine, events } = setup('waits');
    kube.holdRollouts = true;
    try {
      await engine().start();
      expect(kube.workload('Rollout', 'stem', 'waits-api').spec.restartAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      clock.increment(2 * 60_000); // soaked; the controllers are still at it
      const blocked = await engine().advance().catch((error: unknown) => error as GateBlockedError);
      expect(blocked).toBeInstanceOf(GateBlockedError);
      expect(blocked.message).toContain('restarts (wait): restart in progress: Deployment stem/waits-producers (generation 2/2, 0/2 updated, 2 available); StatefulSet stem/waits-beat (generation 2/2, 0/1 updated, 1 ready); Rollout stem/waits-api (phase Progressing');
      await engine().advance().catch(() => undefined); // the same block again: announced once
      clock.increment(10 * 60_000);
      const late = await engine().advance().catch((error: unknown) => error as GateBlockedError);
      expect(late.message).toMatch(/restarts \(wait\): restart not finished 12m after the write \(restartTimeout 5m\)/);
      expect(events()).toEqual(['Normal KeyAdded', 'Warning GateBlocked']);
      kube.finishRollouts();
      expect((await engine().advance()).phase).toBe('activated');
      expect(events()).toEqual(['Normal KeyAdded', 'Warning GateBlocked', 'Normal KeyActivated']);
      const message = kube.events.find((event) => event.reason === 'KeyActivated')?.message as string;
      expect(message).toMatch(/^ring ring: activate done, phase activated; keys ring-20260101-0001, ring-\S+, active ring-\S+$/);
    } finally {
      kube.holdRollouts = false;
    }
  });

  it('exec and webhook hooks run after the write as one recorded step: a failure is retried on the next command, then never again', async () => {
    const dir = tempDir('stem-rotor-hooks-');
    const log = join(dir, 'hook.log');
    const script = join(dir, 'restart-workers.sh');
    // fails the first time (no marker yet), succeeds after; logs the event it was given on stdin
    writeFileSync(script, `#!/bin/sh\nif [ ! -e "${dir}/marker" ]; then touch "${dir}/marker"; echo "systemctl: unit stem-worker@1 not loaded" >&2; exit 3; fi\ncat >> "${log}"\necho "$STEM_ROTOR_RING/$STEM_ROTOR_TARGET/$STEM_ROTOR_TRANSITION" >> "${log}"\n`);
    chmodSync(script, 0o755);
    webhook.bodies.length = 0;
    const { engine, secrets } = setup('hooks', { hooks: [{ exec: [script, '--all'] }, { webhook: webhook.url }] });
    const failed = await engine().start().catch((error: unknown) => error as Error);
    expect(failed.message).toContain('restart hook `' + script + ' --all` exited 3: systemctl: unit stem-worker@1 not loaded');
    expect(existsSync(log)).toBe(false);
    expect(webhook.bodies).toEqual([]);

    const resumed = await engine().advance();
    expect(resumed.outcome).toBe('resumed');
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ ring: 'ring', target: 'workers', transition: 'start', keyIds: ['ring-20260101-0001', expect.stringMatching(/^ring-/)] });
    expect(lines[1]).toBe('ring/workers/start');
    expect(webhook.bodies.map((body) => JSON.parse(body).transition)).toEqual(['start']);
    await engine().advance().catch(() => undefined); // blocked by soak: the hook does not run again
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(findLeaks(secrets, [readFileSync(log, 'utf8'), ...webhook.bodies, failed.message])).toEqual([]);

    webhook.status = 503;
    try {
      const broken = setup('hooks-webhook', { hooks: [{ webhook: webhook.url }] });
      const error = await broken.engine().start().catch((e: unknown) => e as Error);
      expect(error.message).toMatch(/restart webhook http:\/\/127\.0\.0\.1:\d+: HTTP 503/);
      expect(error.message).not.toContain('hook-secret'); // the URL's path and query stay out of messages
    } finally {
      webhook.status = 200;
    }
  });
});

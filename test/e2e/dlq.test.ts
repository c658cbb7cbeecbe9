/** dlq inspect and dlq replay --resign through the built binary, against Stem-format dead letters in a real Redis. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { cli, findLeaks, outputs } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { stemDemo } from '../helpers/stem-demo.js';
import { RedisServer } from '../helpers/redis-server.js';
import { SimulatedWorker, StemFleet, envelopeFromFields, loadEnvFile, newEnvelope } from '../helpers/stem-fleet.js';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';

let server: RedisServer;
let broker: Redis;

beforeAll(async () => {
  server = await new RedisServer().start();
  broker = server.client(0);
});
afterAll(async () => {
  broker.disconnect();
  await server.stop();
});

describe('dlq inspect and replay', () => {
  it('classifies dead letters, re-verifies them against the ring keys, and replays only trusted ones', async () => {
    const { dir, run, secrets, collect } = stemDemo(server, 'stem-rotor-dlq-');

    // An incident: the producer switched to a new key before the workers had it.
    const original = loadEnvFile(join(dir, 'producers.env'));
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    collect();
    const both = loadEnvFile(join(dir, 'producers.env'));
    const newId = [...both.signingKeys.keys()].find((id) => id !== original.activeKeyId) as string;
    const early = { ...both, activeKeyId: newId };
    const fleet = new StemFleet(broker, broker);
    const oldWorker = new SimulatedWorker(fleet, 'w-old', join(dir, 'workers.env'), 1);
    oldWorker.config = original;
    for (let i = 0; i < 3; i += 1) await fleet.enqueue(early, 'emails');
    expect(await oldWorker.consume('emails')).toEqual({ ok: 0, dead: 3 });
    // plus one forged entry no ring key verifies, and one a broker mutation broke
    const forged = signEnvelope(newEnvelope('emails', new Date()), { ...original, signingKeys: new Map([[original.activeKeyId as string, Buffer.alloc(32, 9)]]) });
    await fleet.deadLetter('emails', forged, 'signature mismatch', original.activeKeyId);

    const inspect = run('dlq', 'inspect', 'demo', '--json');
    expect(inspect.code).toBe(0);
    const report = JSON.parse(inspect.stdout);
    expect(report.groups).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ keyId: newId, errorClass: 'unknown-key', queue: 'emails', count: 3, verifiesWith: newId }),
        expect.objectContaining({ keyId: original.activeKeyId, errorClass: 'mismatch', count: 1, verifiesWith: 'none' }),
      ]),
    );
    expect(run('dlq', 'inspect', 'demo').stdout).toMatch(/3 {2}key demo-\d{8}-[0-9a-f]{4} +unknown-key/);

    expect(run('dlq', 'replay', 'demo').code).toBe(2); // --resign is required
    expect(run('dlq', 'replay', 'demo', '--resign').code).toBe(2); // --dry-run or --yes
    const dry = JSON.parse(run('dlq', 'replay', 'demo', '--resign', '--dry-run', '--json').stdout);
    expect(dry).toMatchObject({ dryRun: true, replayed: expect.any(Array), skipped: [expect.objectContaining({ why: expect.stringContaining('no key the ring still trusts') })] });
    expect(dry.replayed).toHaveLength(3);
    expect(await broker.llen('stem:dead:emails')).toBe(4);

    const replay = JSON.parse(run('dlq', 'replay', 'demo', '--resign', '--yes', '--json').stdout);
    expect(replay.replayed).toHaveLength(3);
    expect(await broker.llen('stem:dead:emails')).toBe(1);
    // re-enqueued in Stem's stream format, re-signed with the active (old) key: the old worker accepts them
    const entries = (await broker.xrange('stem:stream:emails', '-', '+')).slice(-3);
    for (const [, fields] of entries) {
      const envelope = envelopeFromFields(fields);
      expect(envelope.attempt).toBe(1);
      expect(envelope.headers['stem-signature-key']).toBe(original.activeKeyId);
      expect(verifyEnvelope(envelope, original)).toMatchObject({ ok: true });
    }
    const audit = JSON.parse(run('audit', 'demo', '--json').stdout) as { action: string; details: { replayed: unknown[] } }[];
    expect(audit.find((event) => event.action === 'dlq-replay')?.details.replayed).toHaveLength(3);

    // After revoking the new key, envelopes signed with it are never replayed.
    for (let i = 0; i < 2; i += 1) await fleet.enqueue(early, 'emails');
    await oldWorker.consume('emails');
    expect(run('revoke', 'demo', newId, '--reason', 'test', '--yes').code).toBe(0);
    collect();
    const afterRevoke = JSON.parse(run('dlq', 'replay', 'demo', '--resign', '--dry-run', '--json').stdout);
    expect(afterRevoke.replayed).toEqual([]);
    expect(afterRevoke.skipped.filter((s: { why: string }) => s.why.includes(`revoked key "${newId}"`))).toHaveLength(2);

    expect(findLeaks(secrets, outputs)).toEqual([]);
  });

  it('a ring without a stem section is a config error', () => {
    const dir = tempDir('stem-rotor-dlq-');
    cli(['init', '--dir', dir]);
    const result = cli(['dlq', 'inspect', 'demo', '--config', join(dir, 'stem-rotor.yaml')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('has no `stem` section');
  });
});

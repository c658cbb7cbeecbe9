/** broadcast resign through the built binary, against a broadcast channel laid out as Stem's Redis broker writes it. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signEnvelope, verifyEnvelope } from '../../src/stem/signer.js';
import { streamFields } from '../../src/stem/stream-format.js';
import { findLeaks, outputs } from '../helpers/cli.js';
import { stemDemo } from '../helpers/stem-demo.js';
import { redisForTests } from '../helpers/redis-server.js';
import { StemFleet, envelopeFromFields, loadEnvFile, newEnvelope } from '../helpers/stem-fleet.js';

const redis = redisForTests();

describe('broadcast resign', () => {
  it('re-signs what a group still has to receive, removes what every group consumed, never re-signs a forgery; dry run first, audited', async () => {
    const { dir, run, secrets, collect } = stemDemo(redis.server, 'stem-rotor-broadcast-', (config) => config.replace('propagate: 3s', 'propagate: 0s'));
    const oldProducer = loadEnvFile(join(dir, 'producers.env'));
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    expect(run('rotate', 'advance', 'demo').code).toBe(0);
    collect();
    const newProducer = loadEnvFile(join(dir, 'producers.env'));

    const fleet = new StemFleet(redis.broker, redis.broker);
    const group = await fleet.subscribe('cache-flush', 'billing-1');
    await fleet.broadcast(oldProducer, 'cache-flush');
    await fleet.broadcast(oldProducer, 'cache-flush');
    expect(await fleet.receive('cache-flush', group, 'billing-1')).toBe(2); // consumed by the only group
    const wanted = await fleet.broadcast(oldProducer, 'cache-flush'); // not yet received
    const forged = signEnvelope(newEnvelope('cache-flush', new Date()), { ...oldProducer, signingKeys: new Map([[oldProducer.activeKeyId as string, Buffer.alloc(32, 7)]]) });
    const forgedId = (await redis.broker.xadd(fleet.keys.broadcast('cache-flush'), '*', ...streamFields(forged), 'delivery', 'at-least-once')) as string;
    const current = await fleet.broadcast(newProducer, 'cache-flush');
    const stream = fleet.keys.broadcast('cache-flush');

    const unconfirmed = run('broadcast', 'resign', 'demo', 'cache-flush');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('preview with `stem-rotor broadcast resign demo cache-flush --dry-run`, then confirm with --yes');
    expect(run('broadcast', 'resign', 'demo', 'nosuch', '--dry-run').code).toBe(2);

    const before = await redis.broker.xrange(stream, '-', '+');
    const dry = run('broadcast', 'resign', 'demo', 'cache-flush', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.entries.map((entry: { entryId: string; action: string }) => [entry.entryId, entry.action])).toEqual([
      [before[0]?.[0], 'remove'],
      [before[1]?.[0], 'remove'],
      [wanted, 'resign'],
    ]);
    expect(plan.skipped).toEqual([expect.objectContaining({ entryId: forgedId, why: expect.stringContaining('verifies under no key the ring still trusts') })]);
    expect(await redis.broker.xrange(stream, '-', '+')).toEqual(before);

    const applied = run('broadcast', 'resign', 'demo', 'cache-flush', '--yes', '--json');
    expect(applied.code).toBe(0);
    const result = JSON.parse(applied.stdout);
    const after = await redis.broker.xrange(stream, '-', '+');
    const newEntryId = result.entries.find((entry: { action: string }) => entry.action === 'resign').newEntryId as string;
    expect(after.map(([id]) => id)).toEqual([forgedId, current, newEntryId]);
    const resigned = envelopeFromFields((after[2] as [string, string[]])[1]);
    expect(resigned.headers['stem-signature-key']).toBe(newProducer.activeKeyId);
    expect(verifyEnvelope(resigned, newProducer)).toMatchObject({ ok: true });
    expect((after[2] as [string, string[]])[1].slice(-2)).toEqual(['delivery', 'at-least-once']);
    expect(await fleet.receive('cache-flush', group, 'billing-1')).toBe(3); // forged, current and the re-signed one
    const audit = JSON.parse(run('audit', 'demo', '--json').stdout) as { action: string; details: { resigned: unknown[]; removed: unknown[] } }[];
    expect(audit.find((event) => event.action === 'broadcast-resign')?.details).toMatchObject({ resigned: [expect.objectContaining({ from: wanted, to: newEntryId })], removed: [expect.anything(), expect.anything()] });
    expect(findLeaks(secrets, outputs)).toEqual([]);
  });
});

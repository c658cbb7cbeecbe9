/** The scheduled job's decisions: start windows (cron) and stuck rotations. */
import { describe, expect, it } from 'vitest';
import { insideWindow } from '../../src/core/cron-window.js';
import { checkStartWindows, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { createHarness } from '../helpers/ring.js';

const HOUR = 3_600_000;

describe('start window', () => {
  it('is open from each cron occurrence for its duration', () => {
    const window = { cron: '0 2 * * *', duration: 2 * HOUR };
    expect(insideWindow(window, new Date('2026-11-28T02:00:00.000Z'))).toBe(true);
    expect(insideWindow(window, new Date('2026-11-28T03:59:59.000Z'))).toBe(true);
    expect(insideWindow(window, new Date('2026-11-28T04:00:00.000Z'))).toBe(false);
    expect(insideWindow(window, new Date('2026-11-28T01:59:00.000Z'))).toBe(false);
    expect(insideWindow(undefined, new Date())).toBe(true);
  });

  it('an invalid cron expression is a config error naming the field', async () => {
    const document = { rings: { r: { policy: { startWindow: { cron: 'every tuesday', duration: '1h' } }, targets: [{ name: 't', provider: 'dotenv', path: 'x.env' }] } } };
    const config = parseConfig(document, '/tmp/c.json');
    await expect(checkStartWindows(config)).rejects.toBeInstanceOf(ConfigError);
    await expect(checkStartWindows(config)).rejects.toThrow(/rings\.r\.policy\.startWindow\.cron: invalid cron expression/);
  });

  it('run starts a due rotation only inside the window', async () => {
    const h = createHarness({ policy: { maxAge: '1d', startWindow: { cron: '0 2 * * *', duration: '1h' } } });
    h.clock.increment(40 * HOUR); // 2026-11-30T02:00Z: due, and the window just opened... move past it
    h.clock.increment(2 * HOUR);
    const outside = await h.engine().runOnce();
    expect(outside).toMatchObject({ outcome: 'noop', message: expect.stringContaining('outside the start window') });
    h.clock.increment(20 * HOUR); // next day 00:00Z + 2h → 02:00Z
    h.clock.increment(2 * HOUR);
    const inside = await h.engine().runOnce();
    expect(inside).toMatchObject({ action: 'start', phase: 'added' });
  });
});

describe('stuck rotations', () => {
  it('a rotation whose gates block past policy.stuckAfter is reported stuck by run and status', async () => {
    const h = createHarness({ policy: { autoAdvance: true, stuckAfter: '6h' }, gates: { beforeActivate: [{ type: 'approval' }], beforeDrop: [] } });
    await h.engine().start();
    h.clock.increment(HOUR);
    expect(await h.engine().runOnce()).toMatchObject({ outcome: 'blocked' });
    expect((await h.engine().status()).stuckForMs).toBeNull();
    h.clock.increment(6 * HOUR);
    const stuck = await h.engine().runOnce();
    expect(stuck).toMatchObject({ outcome: 'stuck', message: expect.stringMatching(/^STUCK for 7h/) });
    expect((await h.engine().status()).stuckForMs).toBe(7 * HOUR);
    const audit = (await h.deps().store.readAudit('ring')).events;
    expect(audit.at(-1)).toMatchObject({ action: 'run', outcome: 'blocked', details: { stuck: true } });
  });
});

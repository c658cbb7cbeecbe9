/** The scheduled job's decisions: change windows (cron in a time zone), freezes, and stuck rotations. */
import { describe, expect, it } from 'vitest';
import { activeFreeze, freezeBounds, freezeProblem, localTime, windowState } from '../../src/core/windows.js';
import { checkWindows, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { createHarness } from '../helpers/ring.js';

const HOUR = 3_600_000;

describe('change windows and freezes', () => {
  const berlin = { cron: '0 2 * * *', duration: 2 * HOUR, timezone: 'Europe/Berlin' };

  it('a window opens at each cron occurrence in its time zone, for its duration, and says when it opens next', () => {
    // 02:00 in Berlin is 01:00Z in winter
    expect(windowState(berlin, new Date('2026-11-28T01:00:00.000Z'))).toEqual({ open: true, closesAt: new Date('2026-11-28T03:00:00.000Z') });
    expect(windowState(berlin, new Date('2026-11-28T02:59:59.000Z')).open).toBe(true);
    expect(windowState(berlin, new Date('2026-11-28T03:00:00.000Z'))).toEqual({ open: false, opensAt: new Date('2026-11-29T01:00:00.000Z') });
    expect(windowState(berlin, new Date('2026-11-28T00:59:00.000Z'))).toEqual({ open: false, opensAt: new Date('2026-11-28T01:00:00.000Z') });
    // in summer the same local time is 00:00Z
    expect(windowState(berlin, new Date('2026-07-01T00:30:00.000Z')).open).toBe(true);
    expect(localTime(new Date('2026-11-29T01:00:00.000Z'), 'Europe/Berlin')).toBe('2026-11-29 02:00 Europe/Berlin');
  });

  it('a date-only freeze covers whole days in its time zone, its last day included', () => {
    const freeze = { from: '2026-12-24', to: '2026-12-26', timezone: 'Europe/Berlin', reason: 'holidays' };
    expect(freezeBounds(freeze)).toEqual({ start: new Date('2026-12-23T23:00:00.000Z'), end: new Date('2026-12-26T23:00:00.000Z') });
    expect(activeFreeze([freeze], new Date('2026-12-26T22:59:00.000Z'))?.until).toEqual(new Date('2026-12-26T23:00:00.000Z'));
    expect(activeFreeze([freeze], new Date('2026-12-26T23:00:00.000Z'))).toBeNull();
    expect(freezeProblem({ ...freeze, to: '2026-12-01' })).toContain('is not after');
    expect(freezeProblem({ ...freeze, to: 'after xmas' })).toContain('must be dates');
  });

  it('bad windows, freezes and time zones are config errors naming the field', async () => {
    const ring = (policy: unknown) => ({ rings: { r: { policy, targets: [{ name: 't', provider: 'dotenv', path: 'x.env' }] } } });
    const cron = parseConfig(ring({ windows: { activate: { cron: 'every tuesday', duration: '1h' } } }), '/tmp/c.json');
    await expect(checkWindows(cron)).rejects.toBeInstanceOf(ConfigError);
    await expect(checkWindows(cron)).rejects.toThrow(/rings\.r\.policy\.windows\.activate\.cron: invalid cron expression/);
    const legacy = parseConfig(ring({ startWindow: { cron: 'nope', duration: '1h' } }), '/tmp/c.json');
    await expect(checkWindows(legacy)).rejects.toThrow(/rings\.r\.policy\.windows\.start\.cron/);
    await expect(checkWindows(parseConfig(ring({ freeze: [{ from: '2026-12-24', to: '2026-12-01' }] }), '/tmp/c.json'))).rejects.toThrow(/rings\.r\.policy\.freeze\[0\]: "2026-12-01" is not after/);
    expect(() => parseConfig(ring({ windows: { drop: { cron: '0 2 * * *', duration: '1h', timezone: 'Mars/Olympus' } } }), '/tmp/c.json')).toThrow(/rings\.r\.policy\.windows\.drop\.timezone: not an IANA time zone/);
    expect(() => parseConfig(ring({ startWindow: { cron: '0 2 * * *', duration: '1h' }, windows: { start: { cron: '0 3 * * *', duration: '1h' } } }), '/tmp/c.json')).toThrow(/give the start window once/);
  });

  it('run starts a due rotation only inside the start window', async () => {
    const h = createHarness({ policy: { maxAge: '1d', startWindow: { cron: '0 2 * * *', duration: '1h' } } });
    h.clock.increment(42 * HOUR); // 2026-11-30T04:00Z: due, the window closed at 03:00Z
    const outside = await h.engine().runOnce();
    expect(outside).toMatchObject({ outcome: 'noop', message: expect.stringContaining('rotation due, but window: outside the start window ("0 2 * * *" UTC, open 1h); it opens next at 2026-12-01 02:00 UTC') });
    expect((await h.deps().store.readAudit('ring')).events.filter((event) => event.outcome === 'blocked')).toEqual([]); // a quiet wait
    h.clock.increment(22 * HOUR); // 02:00Z
    const inside = await h.engine().runOnce();
    expect(inside).toMatchObject({ action: 'start', phase: 'added' });
  });

  it('activate and drop wait for their windows under run; by hand they are refused unless --override window', async () => {
    const h = createHarness({ policy: { autoAdvance: true, propagate: '1m', drain: '1m', windows: { activate: { cron: '0 9 * * *', duration: '1h', timezone: 'America/New_York' } } } });
    await h.engine().start();
    h.clock.increment(2 * HOUR); // 12:00Z = 07:00 in New York: soaked, but before the window
    const waiting = await h.engine().runOnce();
    expect(waiting).toMatchObject({ outcome: 'blocked', message: expect.stringContaining('window (wait): outside the activate window ("0 9 * * *" America/New_York, open 1h); it opens next at 2026-11-28 09:00 America/New_York') });
    await expect(h.engine().advance()).rejects.toThrow(/--override window --reason/);
    const overridden = await h.engine().advance({ overrides: [{ gate: 'window', reason: 'CHG-9 emergency' }] });
    expect(overridden.phase).toBe('activated');
    expect((await h.engine().runOnce()).phase).toBe('activated'); // drop has no window: only soak
    h.clock.increment(2 * 60_000);
    expect((await h.engine().runOnce()).phase).toBe('stable');
  });

  it('a freeze holds starting and advancing but never an abort', async () => {
    const h = createHarness({ policy: { maxAge: '1d', autoAdvance: true, propagate: '1m', freeze: [{ from: '2026-11-28', to: '2026-11-29', reason: 'Thanksgiving' }] } });
    await expect(h.engine().start()).rejects.toThrow(/window \(wait\): frozen until 2026-11-30 00:00 UTC \(Thanksgiving\): the start waits/);
    await h.engine().start({ overrides: [{ gate: 'window', reason: 'incident 7' }] });
    h.clock.increment(HOUR);
    expect(await h.engine().runOnce()).toMatchObject({ outcome: 'blocked', message: expect.stringContaining('frozen until') });
    expect((await h.engine().abort()).phase).toBe('stable');
    h.clock.increment(48 * HOUR); // past the freeze, and the key is older than maxAge
    expect(await h.engine().runOnce()).toMatchObject({ action: 'start', phase: 'added' });
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

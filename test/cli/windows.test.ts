/** Windows and freezes through the built CLI: status shows the next window; a start by hand in a freeze is refused with the override that lets it through. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

describe('windows and freezes', () => {
  it('status names the window; rotate start in a freeze exits 3 naming the freeze and the override; the override is audited', () => {
    const dir = tempDir('stem-rotor-window-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const policy = `      freeze:\n        - from: "${day(-1)}"\n          to: "${day(1)}"\n          timezone: Europe/Lisbon\n          reason: year-end freeze\n      windows:\n        drop:\n          cron: "30 3 * * 1-5"\n          duration: 2h\n          timezone: Asia/Kolkata\n`;
    writeFileSync(config, readFileSync(config, 'utf8').replace('      autoAdvance: true\n', `      autoAdvance: true\n${policy}`));
    expect(cli(['check', '--config', config]).code).toBe(0);

    const status = JSON.parse(cli(['status', 'demo', '--config', config, '--json']).stdout) as { gates: { name: string; verdict: string; reason: string }[] };
    expect(status.gates).toEqual([expect.objectContaining({ name: 'window', verdict: 'wait', reason: `frozen until ${day(2)} 00:00 Europe/Lisbon (year-end freeze): the start waits` })]);

    const refused = cli(['rotate', 'start', 'demo', '--config', config]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('window (wait): frozen until');
    expect(refused.stderr).toContain('`stem-rotor rotate start demo --override window --reason "…"`');
    expect(cli(['rotate', 'start', 'demo', '--config', config, '--override', 'soak', '--reason', 'x']).stderr).toContain('no such gate before the next step of ring "demo" (gates: window)');

    const started = cli(['rotate', 'start', 'demo', '--config', config, '--override', 'window', '--reason', 'INC-42']);
    expect(started.code, started.stderr).toBe(0);
    const audit = JSON.parse(cli(['audit', 'demo', '--config', config, '--json']).stdout) as { action: string; details?: Record<string, unknown> }[];
    expect(audit.find((event) => event.action === 'override')?.details).toMatchObject({ gate: 'window', reason: 'INC-42', transition: 'start' });
  });
});

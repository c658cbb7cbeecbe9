/** The README and docs are a reference that stays true: the config reference is current, every lint code is explained, the contents link to real sections. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LINT_CODES } from '../../src/stem/lint.js';
import { cli } from '../helpers/cli.js';

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

describe('docs', () => {
  it('docs/configuration.md is what `stem-rotor config reference` prints (regenerate: stem-rotor config reference > docs/configuration.md)', () => {
    const printed = cli(['config', 'reference']);
    expect(printed.code, printed.stderr).toBe(0);
    expect(read('docs/configuration.md')).toBe(printed.stdout);
    for (const field of ['`rings.<name>.policy.windows.activate.timezone`', '`notify[].secretEnv`', '`rings.<name>.targets[].restartTimeout`', '`store.leaseTtl`']) expect(printed.stdout).toContain(field);
  });

  it('the README explains every lint code, and its contents link to its sections', () => {
    const readme = read('README.md');
    for (const code of Object.values(LINT_CODES)) expect(readme, code).toMatch(new RegExp(`^\\| ${code} \\| (error|warning) \\| `, 'm'));
    const anchors = new Set([...readme.matchAll(/^## (.+)$/gm)].map((match) => (match[1] as string).toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    const links = [...readme.matchAll(/^- \[[^\]]+\]\(#([^)]+)\)$/gm)].map((match) => match[1] as string);
    expect(links.length).toBeGreaterThanOrEqual(8);
    expect(links.filter((link) => !anchors.has(link))).toEqual([]);
    expect(read('LICENSE')).toContain('MIT License');
    expect(read('CHANGELOG.md')).toMatch(/^# Changelog/);
  });
});

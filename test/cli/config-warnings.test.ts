/** Config warnings: valid settings that probably do not do what was meant, printed by `check` with their rule names. */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

describe('config warnings', () => {
  it("check warns that a ring's own gate list replaces the defaults, and that maxAge is shorter than a rotation", () => {
    const dir = tempDir('stem-rotor-warn-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    const clean = cli(['check', '--config', config, '--json']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout).warnings).toEqual([]); // the example has none

    const text = readFileSync(config, 'utf8');
    writeFileSync(config, text.replace('maxAge: 30d', 'maxAge: 4s').replace(/( +)beforeActivate:\n +- type: soak\n/, '$1beforeActivate:\n$1  - type: approval\n'));
    const warned = cli(['check', '--config', config]);
    expect(warned.code, warned.stderr).toBe(0); // warnings never fail the check
    expect(warned.stdout).toContain('valid, 2 warnings');
    expect(warned.stdout).toContain('warning gates-replace-defaults: rings.demo.gates.beforeActivate replaces the default gates, so soak is not run; list it too to keep it');
    expect(warned.stdout).toContain('warning max-age-below-rotation: rings.demo.policy.maxAge (4s) is shorter than propagate + drain (6s)');
    const json = JSON.parse(cli(['check', '--config', config, '--json']).stdout) as { warnings: { ring: string; rule: string }[] };
    expect(json.warnings.map((warning) => [warning.ring, warning.rule])).toEqual([
      ['demo', 'gates-replace-defaults'],
      ['demo', 'max-age-below-rotation'],
    ]);
  });

  it('a Stem ring that lists one gate of its own is told which Stem gates it dropped', () => {
    const dir = tempDir('stem-rotor-warn-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'ring.json');
    const targets = [{ name: 'producers', provider: 'dotenv', path: 'producers.env' }, { name: 'workers', provider: 'dotenv', path: 'workers.env' }];
    const prometheus = { type: 'prometheus', url: 'http://127.0.0.1:9', query: 'sum(stem_tasks_signature_invalid_total)' };
    writeFileSync(config, JSON.stringify({ rings: { demo: { stem: { broker: { url: 'redis://127.0.0.1:9/0', connectTimeout: '1s' } }, gates: { beforeDrop: [prometheus] }, targets } } }));
    const result = cli(['check', '--config', config]);
    expect(result.stdout).toContain('warning gates-replace-defaults: rings.demo.gates.beforeDrop replaces the default gates, so soak, stem-workers, stem-signers, stem-backlog, stem-dlq are not run; list them too to keep them');
    expect(result.stdout).not.toMatch(/beforeActivate replaces/);
  });

  it('an invalid config names every error with its rule, path and message, and changes nothing', () => {
    const dir = tempDir('stem-rotor-warn-');
    const config = join(dir, 'ring.json');
    const targets = [
      { name: 'producers', provider: 'dotenv', path: 'a.env', audience: 'verifiers' },
      { name: 'producers', provider: 'dotenv', path: 'b.env', audience: 'verifiers' },
    ];
    writeFileSync(config, JSON.stringify({ rings: { demo: { gates: { beforeDrop: [{ type: 'stem-workers' }] }, targets } } }));
    const human = cli(['check', '--config', config]);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain('rings.demo.targets: at least one target must have audience "all"');
    expect(human.stderr).toContain('rings.demo.targets[1].name: "producers" is used twice');
    const json = cli(['check', '--config', config, '--json']);
    expect(json.code).toBe(2);
    const findings = (JSON.parse(json.stdout) as { findings: { rule: string; path: string }[] }).findings;
    expect(findings.map((finding) => [finding.rule, finding.path])).toEqual([
      ['verifiers-need-ed25519', 'rings.demo.targets[0].audience'],
      ['verifiers-need-ed25519', 'rings.demo.targets[1].audience'],
      ['ring-needs-a-signer', 'rings.demo.targets'],
      ['unique-target-names', 'rings.demo.targets[1].name'],
      ['stem-gates-need-stem', 'rings.demo.gates.beforeDrop[0]'],
    ]);
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ rings: { demo: { targets: [{ name: 'p', provider: 'dotenv' }] } } }));
    const typo = JSON.parse(cli(['check', '--config', join(dir, 'typo.json'), '--json']).stdout) as { findings: { rule: string; path: string }[] };
    expect(typo.findings[0]).toMatchObject({ rule: 'schema', path: 'rings.demo.targets[0].path' });
    expect(readdirSync(dir).sort()).toEqual(['ring.json', 'typo.json']); // no state, no env file, no audit
  });
});

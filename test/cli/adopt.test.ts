/**
 * Adopting the keys a fleet already uses, and getting out of drift, through the built CLI: `adopt`
 * records each key's age (from --created, the id's date, or first seen, saying which) and every
 * view uses that one age; `reconcile` shows the difference, accepts the targets only with --yes and
 * a reason (audited), refuses mid-rotation without --force and never takes a revoked key back.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKey } from '../../src/stem/keys.js';
import { formatKeyList } from '../../src/stem/signing-env.js';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { seededRandom } from '../helpers/random.js';

/** A ring as production has it: env files written by hand years ago, key ids without dates. */
function production(ids: string[], active: string) {
  const dir = tempDir('stem-rotor-adopt-');
  const keys = formatKeyList(ids.map((id) => ({ id, material: generateKey('hmac-sha256', id, seededRandom(id)).secret as Buffer })));
  for (const file of ['producers.env', 'workers.env']) writeFileSync(join(dir, file), `# managed by hand since 2023\r\nSTEM_SIGNING_KEYS="${keys}"\r\nSTEM_SIGNING_ACTIVE_KEY=${active}\r\n`);
  const config = join(dir, 'stem-rotor.yaml');
  writeFileSync(config, 'store: { type: file, dir: state }\nrings:\n  prod:\n    keyIdPrefix: prod-\n    policy: { maxAge: 90d }\n    targets:\n      - { name: producers, provider: dotenv, path: producers.env }\n      - { name: workers, provider: dotenv, path: workers.env }\n');
  return { dir, config };
}

interface Status {
  adopted: boolean;
  next: string;
  keys: { id: string; ageMs: number }[];
  schedule: { activeKeyCreatedAt: string; nextRotationDueAt: string };
}

describe('adopt', () => {
  it('records how old production keys are, says where each age came from, and every view uses it', () => {
    const { config } = production(['primary', 'prod-20250101-ab12'], 'primary');
    const before = JSON.parse(cli(['status', 'prod', '--config', config, '--json']).stdout) as Status;
    expect(before.adopted).toBe(false);
    expect(before.next).toContain('not adopted yet: `stem-rotor adopt prod`');

    const adopted = cli(['adopt', 'prod', '--config', config]);
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.stdout).toMatch(/\* primary \S+ created \S+ \(from first seen\)/);
    expect(adopted.stdout).toContain('prod-20250101-ab12');
    expect(adopted.stdout).toMatch(/prod-20250101-ab12 \S+ created 2025-01-01T00:00:00\.000Z \(from key id\)/);
    expect(cli(['adopt', 'prod', '--config', config]).stderr).toContain('is already managed'); // once

    const { config: old } = production(['primary'], 'primary');
    const dated = cli(['adopt', 'prod', '--config', old, '--created', '2024-03-01', '--json']);
    expect(JSON.parse(dated.stdout).keys).toEqual([expect.objectContaining({ id: 'primary', createdAt: '2024-03-01T00:00:00.000Z', source: '--created' })]);
    const status = JSON.parse(cli(['status', 'prod', '--config', old, '--json']).stdout) as Status;
    expect(status.adopted).toBe(true);
    expect(status.keys[0]?.ageMs).toBeGreaterThan(365 * 86_400_000);
    expect(status.schedule.nextRotationDueAt).toBe('2024-05-30T00:00:00.000Z');
    // the scheduled job agrees: the key is far past maxAge, so run starts a rotation
    const run = cli(['run', '--once', '--config', old, '--json']);
    expect(JSON.parse(run.stdout)[0]).toMatchObject({ action: 'start', phase: 'added' });
    expect(cli(['adopt', 'prod', '--config', old, '--created', 'last spring']).code).toBe(2);
  });
});

describe('reconcile', () => {
  it('shows drift, accepts the targets only with --yes --reason, audited; refuses mid-rotation and revoked keys', () => {
    const { dir, config } = production(['primary'], 'primary');
    expect(cli(['adopt', 'prod', '--config', config]).code).toBe(0);
    expect(cli(['reconcile', 'prod', '--config', config]).stdout).toContain('the targets hold what the state says');

    // someone re-ran their own key tooling over both files
    const replaced = formatKeyList([{ id: 'hand-2', material: generateKey('hmac-sha256', 'hand-2', seededRandom('hand-2')).secret as Buffer }]);
    for (const file of ['producers.env', 'workers.env']) writeFileSync(join(dir, file), `STEM_SIGNING_KEYS=${replaced}\nSTEM_SIGNING_ACTIVE_KEY=hand-2\n`);
    const drift = cli(['rotate', 'start', 'prod', '--config', config]);
    expect(drift.code).toBe(2);
    expect(drift.stderr).toContain('if the targets are right, `stem-rotor reconcile prod` shows the difference and accepts them');

    const shown = cli(['reconcile', 'prod', '--config', config]);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toContain('+ key hand-2');
    expect(shown.stdout).toContain('- key primary');
    expect(shown.stdout).toContain('~ active key: primary in the state, hand-2 in the targets');
    expect(shown.stdout).toContain('`stem-rotor reconcile prod --yes --reason "…"`');
    expect(cli(['reconcile', 'prod', '--config', config, '--yes']).stderr).toContain('needs --reason');
    const state = () => readFileSync(join(dir, 'state', 'rings', 'prod.json'), 'utf8');
    const untouched = state();
    expect(untouched).toContain('"primary"');

    const accepted = cli(['reconcile', 'prod', '--config', config, '--yes', '--reason', 'keys replaced by the old tooling, INC-7']);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(JSON.parse(state()).activeKeyId).toBe('hand-2');
    const audit = JSON.parse(cli(['audit', 'prod', '--config', config, '--json']).stdout) as { action: string; details?: Record<string, unknown> }[];
    expect(audit.find((event) => event.action === 'reconcile')?.details).toMatchObject({ reason: 'keys replaced by the old tooling, INC-7' });
    expect(cli(['check', 'prod', '--config', config]).code).toBe(0);

    // mid-rotation: refused without --force
    expect(cli(['rotate', 'start', 'prod', '--config', config]).code).toBe(0);
    const status = JSON.parse(cli(['status', 'prod', '--config', config, '--json']).stdout) as { keys: { id: string; active: boolean }[] };
    const fresh = status.keys.find((key) => !key.active)?.id as string;
    const onlyHand = `STEM_SIGNING_KEYS=${replaced}\nSTEM_SIGNING_ACTIVE_KEY=hand-2\n`;
    for (const file of ['producers.env', 'workers.env']) writeFileSync(join(dir, file), onlyHand);
    const busy = cli(['reconcile', 'prod', '--config', config, '--yes', '--reason', 'x']);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain('is mid-rotation (phase added); finish it (`stem-rotor rotate advance prod`) or abort it (`stem-rotor rotate abort prod`) first, or accept the targets anyway with --force');
    expect(cli(['reconcile', 'prod', '--config', config, '--yes', '--reason', 'rotation abandoned', '--force']).code).toBe(0);
    expect(JSON.parse(state()).rotation).toBeNull();
    expect(fresh).toMatch(/^prod-/);

    // a revoked key never comes back through reconcile
    expect(cli(['rotate', 'start', 'prod', '--config', config]).code).toBe(0);
    const newest = (JSON.parse(state()).keys as { id: string }[]).map((key) => key.id).find((id) => id !== 'hand-2') as string;
    expect(cli(['revoke', 'prod', 'hand-2', '--reason', 'leaked', '--yes', '--config', config]).code).toBe(0);
    for (const file of ['producers.env', 'workers.env']) writeFileSync(join(dir, file), onlyHand);
    const back = cli(['reconcile', 'prod', '--config', config, '--yes', '--reason', 'restore', '--force']);
    expect(back.code).toBe(2);
    expect(back.stderr).toContain('the targets hold revoked key hand-2; it is never accepted back');
    expect(newest).toMatch(/^prod-/);
  });
});

/**
 * Approvals as recorded, attributed acts, through the built CLI: `approve` / `deny` record who, when
 * and for which step; the approval gate counts a recorded approval under `run --once` (no
 * `--approve` on that call); requireDistinctApprover and approvalTtl hold; refusals change nothing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

interface Status {
  phase: string;
  gates: { name: string; verdict: string; reason: string }[];
}
interface AuditEvent {
  action: string;
  outcome: string;
  actor: { user: string };
  details?: Record<string, unknown>;
}

function ringWithApproval(approval: string): { config: string; dir: string } {
  const dir = tempDir('stem-rotor-approve-');
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'stem-rotor.yaml');
  const text = readFileSync(config, 'utf8');
  writeFileSync(config, text.replace(/( +)beforeActivate:\n +- type: soak\n/, `$1beforeActivate:\n$1  - type: approval\n${approval.replace(/^/gm, '$1    ')}\n`).replace(/( +)beforeDrop:\n +- type: soak\n/, '$1beforeDrop: []\n'));
  return { config, dir };
}

const as = (user: string) => ({ env: { STEM_ROTOR_ACTOR: user } });

function status(config: string) {
  const result = cli(['status', 'demo', '--config', config, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Status;
}

function audit(config: string): AuditEvent[] {
  return JSON.parse(cli(['audit', 'demo', '--config', config, '--json']).stdout) as AuditEvent[];
}

describe('approvals', () => {
  it('an approval recorded by someone other than the starter lets run --once advance; the starter cannot approve their own rotation', () => {
    const { config } = ringWithApproval('requireDistinctApprover: true');
    expect(cli(['rotate', 'start', 'demo', '--config', config], as('rotor-cron')).code).toBe(0);
    const waiting = cli(['run', '--once', '--config', config], as('rotor-cron'));
    expect(waiting.code, waiting.stderr).toBe(0);
    expect(status(config).gates[0]?.reason).toContain('needs a recorded approval: run `stem-rotor approve demo --reason "…"`');

    const self = cli(['approve', 'demo', '--config', config, '--reason', 'CHG-1'], as('rotor-cron'));
    expect(self.code, self.stderr).toBe(0);
    expect(cli(['run', '--once', '--config', config], as('rotor-cron')).code).toBe(0);
    const refused = status(config);
    expect(refused.phase).toBe('added');
    expect(refused.gates[0]).toMatchObject({ verdict: 'wait', reason: expect.stringContaining('rotor-cron started this rotation and cannot also approve it') });

    const approved = cli(['approve', 'demo', '--config', config, '--reason', 'CHG-7 reviewed', '--as', 'alice'], as('rotor-cron'));
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain("recorded alice's approval of the activate of rotation");
    expect(approved.stdout).toContain('next: `stem-rotor rotate advance demo`');
    expect(status(config).gates[0]).toMatchObject({ verdict: 'pass', reason: expect.stringMatching(/^approved by alice at \S+: CHG-7 reviewed$/) });

    expect(cli(['run', '--once', '--config', config], as('rotor-cron')).code).toBe(0);
    expect(status(config).phase).toBe('activated');
    expect(status(config).gates).toEqual([]); // the drop has no gates; the spent approval is gone
    expect(cli(['run', '--once', '--config', config], as('rotor-cron')).code).toBe(0);
    expect(status(config).phase).toBe('stable');

    const approvals = audit(config).filter((event) => event.action === 'approve');
    expect(approvals.map((event) => [event.actor.user, event.details?.reason, event.details?.step])).toEqual([
      ['rotor-cron', 'CHG-1', 'activate'],
      ['alice', 'CHG-7 reviewed', 'activate'],
    ]);
    expect(audit(config).find((event) => event.action === 'start' && event.outcome === 'planned')?.actor.user).toBe('rotor-cron');
  });

  it('an approval expires after approvalTtl; advance --approve records a fresh one', async () => {
    const { config } = ringWithApproval('approvalTtl: 1s');
    expect(cli(['rotate', 'start', 'demo', '--config', config]).code).toBe(0);
    expect(cli(['approve', 'demo', '--config', config, '--reason', 'ok'], as('alice')).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const blocked = cli(['rotate', 'advance', 'demo', '--config', config]);
    expect(blocked.code).toBe(3);
    expect(blocked.stderr).toMatch(/the approval by alice at \S+ expired \(approvalTtl 1s\)/);
    const shortcut = cli(['rotate', 'advance', 'demo', '--config', config, '--approve', '--reason', 'on call'], as('bob'));
    expect(shortcut.code, shortcut.stderr).toBe(0);
    expect(status(config).phase).toBe('activated');
    expect(audit(config).filter((event) => event.action === 'approve').map((event) => [event.actor.user, event.details?.via ?? 'approve'])).toEqual([
      ['alice', 'approve'],
      ['bob', '--approve'],
    ]);
  });

  it('deny records the refusal and aborts the rotation', () => {
    const { config } = ringWithApproval('requireDistinctApprover: false');
    expect(cli(['rotate', 'start', 'demo', '--config', config]).code).toBe(0);
    const denied = cli(['deny', 'demo', '--config', config, '--reason', 'change freeze', '--as', 'carol']);
    expect(denied.code, denied.stderr).toBe(0);
    expect(status(config).phase).toBe('stable');
    const events = audit(config);
    expect(events.find((event) => event.action === 'deny')).toMatchObject({ actor: { user: 'carol' }, details: { reason: 'change freeze', step: 'activate' } });
    expect(events.find((event) => event.action === 'abort' && event.outcome === 'planned')?.details?.reason).toBe('denied by carol: change freeze');
  });

  it('refuses what cannot be approved, with the next command, and writes nothing', () => {
    const { config, dir } = ringWithApproval('requireDistinctApprover: false');
    expect(cli(['rotate', 'start', 'demo', '--config', config, '--dry-run']).code).toBe(0);
    const stable = cli(['approve', 'demo', '--config', config, '--reason', 'x']);
    expect(stable.code).toBe(2);
    expect(stable.stderr).toContain('nothing to approve (it is stable: there is no step to approve)');
    expect(cli(['approve', 'demo', '--config', config]).code).toBe(2); // --reason is required
    expect(cli(['deny', 'demo', '--config', config, '--reason', 'x']).stderr).toContain('has no rotation to deny');

    const soakOnly = join(dir, 'soak.yaml');
    writeFileSync(soakOnly, readFileSync(config, 'utf8').replace(/- type: approval\n.*\n/, '- type: soak\n'));
    expect(cli(['rotate', 'start', 'demo', '--config', soakOnly]).code).toBe(0);
    const before = readFileSync(join(dir, 'state', 'rings', 'demo.json'), 'utf8');
    const noGate = cli(['approve', 'demo', '--config', soakOnly, '--reason', 'x']);
    expect(noGate.code).toBe(2);
    expect(noGate.stderr).toContain('no approval gate guards the next step (gates: soak); nothing was recorded. next: `stem-rotor rotate advance demo`');
    expect(readFileSync(join(dir, 'state', 'rings', 'demo.json'), 'utf8')).toBe(before);
  });
});

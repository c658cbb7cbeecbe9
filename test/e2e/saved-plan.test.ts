/**
 * Saved plans through the built CLI: `rotate … --dry-run --out plan.json` writes what would happen
 * (the new key id fixed), `--plan plan.json` applies exactly that, or refuses with exit 2 naming what
 * changed since — a target, the ring's state, a gate now blocking — and writes nothing.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, findLeaks, secretsIn } from '../helpers/cli.js';
import { snapshotTree, tempDir } from '../helpers/fs.js';
import { RedisServer } from '../helpers/redis-server.js';
import { StemFleet, newEnvelope } from '../helpers/stem-fleet.js';

function demo() {
  const dir = tempDir('stem-rotor-plan-');
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'stem-rotor.yaml');
  const run = (...args: string[]) => cli([...args, '--config', config]);
  const state = () => JSON.parse(run('status', 'demo', '--json').stdout) as { phase: string; keys: { id: string; active: boolean }[] };
  return { dir, config, run, state, plan: join(dir, 'plan.json') };
}

describe('saved plans', () => {
  it('applies exactly the plan: the key id it showed, the writes it listed; the file holds no key material', () => {
    const d = demo();
    const dry = d.run('rotate', 'start', 'demo', '--dry-run', '--out', d.plan, '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const printed = JSON.parse(dry.stdout) as { plan: { transition: { generatedKeyId: string } } };
    const saved = JSON.parse(readFileSync(d.plan, 'utf8')) as { transition: { generatedKeyId: string }; targets: { name: string; fields: string[] }[]; hash: string };
    expect(saved).toEqual(printed.plan); // a dry run prints the same plan it saves
    expect(saved.targets.map((target) => [target.name, target.fields])).toEqual([['producers', ['STEM_SIGNING_KEYS']], ['workers', ['STEM_SIGNING_KEYS']]]);
    expect(statSync(d.plan).mode & 0o777).toBe(0o600);
    expect(d.state().phase).toBe('stable'); // the dry run wrote nothing

    const applied = d.run('rotate', 'start', 'demo', '--plan', d.plan, '--json');
    expect(applied.code, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({ outcome: 'done', newKey: { id: saved.transition.generatedKeyId } });
    expect(d.state().keys.map((key) => key.id)).toContain(saved.transition.generatedKeyId);
    const secrets = new Set([...secretsIn(join(d.dir, 'producers.env')), ...secretsIn(join(d.dir, 'workers.env'))]);
    expect(secrets.size).toBeGreaterThan(1);
    expect(findLeaks(secrets, [readFileSync(d.plan, 'utf8'), dry.stdout, applied.stdout])).toEqual([]);
    const audit = readFileSync(join(d.dir, 'state', 'audit.jsonl'), 'utf8');
    expect(audit).toContain(saved.hash); // the audit trail names the plan that was applied
  });

  it('refuses, writing nothing, when a target or the ring state changed since the plan', () => {
    const d = demo();
    // the ring's state is stored (a rotation started and abandoned), so the apply reads it rather than the targets
    expect(d.run('rotate', 'start', 'demo').code).toBe(0);
    expect(d.run('rotate', 'abort', 'demo').code).toBe(0);
    expect(d.run('rotate', 'start', 'demo', '--dry-run', '--out', d.plan).code).toBe(0);
    const workers = join(d.dir, 'workers.env');
    const original = readFileSync(workers, 'utf8');
    writeFileSync(workers, original.replace(/STEM_SIGNING_KEYS=([^:]+):\S+/, (_, id: string) => `STEM_SIGNING_KEYS=${id}:${Buffer.alloc(32, 7).toString('base64')}`));
    const before = snapshotTree(d.dir);
    const changed = d.run('rotate', 'start', 'demo', '--plan', d.plan);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/the saved plan no longer applies; nothing was written:\n  - target "workers" \(.*workers\.env\) changed since the plan was made\nnext: make a new plan with `stem-rotor rotate start demo --dry-run --out plan\.json`/);
    expect(snapshotTree(d.dir)).toEqual(before);

    writeFileSync(workers, original);
    expect(d.run('rotate', 'start', 'demo').code).toBe(0); // another command ran in between
    expect(d.run('rotate', 'advance', 'demo', '--dry-run', '--out', d.plan).code).toBe(3); // soak not over: no plan to save
    expect(d.run('rotate', 'abort', 'demo', '--dry-run', '--out', d.plan).code).toBe(0);
    expect(d.run('rotate', 'abort', 'demo').code).toBe(0);
    const stale = d.run('rotate', 'abort', 'demo', '--plan', d.plan);
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain("the ring's state changed since the plan was made (another command ran)");
  });

  it('refuses an edited plan, a plan for another step, and flags that contradict it', () => {
    const d = demo();
    expect(d.run('rotate', 'start', 'demo', '--dry-run', '--out', d.plan).code).toBe(0);
    const text = readFileSync(d.plan, 'utf8');
    writeFileSync(d.plan, text.replace(/"activeKeyId": "([^"]+)"/, '"activeKeyId": "attacker"'));
    const edited = d.run('rotate', 'start', 'demo', '--plan', d.plan);
    expect(edited.code).toBe(2);
    expect(edited.stderr).toContain(`--plan ${d.plan}: its content does not match its hash: the plan was edited after it was written`);
    writeFileSync(d.plan, text);
    expect(d.run('rotate', 'abort', 'demo', '--plan', d.plan).stderr).toContain('the plan is for rotate start, not rotate abort');
    expect(d.run('rotate', 'start', 'demo', '--plan', d.plan, '--dry-run').code).toBe(2);
    expect(d.run('rotate', 'start', 'demo', '--out', d.plan).stderr).toContain('--out saves the plan of a dry run: add --dry-run');
    const missing = d.run('rotate', 'start', 'demo', '--plan', join(d.dir, 'nope.json'));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^stem-rotor: cannot read the plan .*nope\.json: .*\(ENOENT\)$/);
    expect(d.state().phase).toBe('stable');
  });
});

describe('saved plans and gates', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await new RedisServer().start();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('refuses a plan whose gate now blocks, naming the gate; overrides recorded in the plan are applied with it', async () => {
    const d = demo();
    const text = readFileSync(d.config, 'utf8');
    // the demo ring, with Stem's dead letters as evidence before activating (no soak, so the plan can be made at once)
    writeFileSync(d.config, text.replace(/( +)beforeActivate:\n +- type: soak\n/, `$1beforeActivate:\n$1  - type: stem-dlq\n`).replace(/^(\s+)targets:/m, `$1stem: { broker: { url: "${server.url(0)}" } }\n$1targets:`));
    expect(d.run('rotate', 'start', 'demo').code).toBe(0);
    const planned = d.run('rotate', 'advance', 'demo', '--dry-run', '--out', d.plan);
    expect(planned.code, planned.stderr).toBe(0);

    const broker = server.client(0);
    const fleet = new StemFleet(broker, broker);
    const keyId = d.state().keys.find((key) => !key.active)?.id as string; // the new key, which a stale worker does not know
    await fleet.deadLetter('default', newEnvelope('default', new Date(), { headers: { 'stem-signature': 'AAAA', 'stem-signature-key': keyId } }), `unknown signing key "${keyId}"`, keyId);
    const refused = d.run('rotate', 'advance', 'demo', '--plan', d.plan);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/the saved plan no longer applies; nothing was written:\n  - gate stem-dlq now wait: 1 signature-invalid dead letters/);
    expect(d.state().phase).toBe('added');

    // a plan made with an override carries it: the apply lets the same gate through, audited
    expect(d.run('rotate', 'advance', 'demo', '--dry-run', '--out', d.plan, '--override', 'stem-dlq', '--reason', 'a replayed test letter').code).toBe(0);
    const applied = d.run('rotate', 'advance', 'demo', '--plan', d.plan);
    expect(applied.code, applied.stderr).toBe(0);
    expect(d.state().phase).toBe('activated');
    expect(readFileSync(join(d.dir, 'state', 'audit.jsonl'), 'utf8')).toMatch(/"action":"override".*"reason":"a replayed test letter"/);
    broker.disconnect();
  });
});

/** End to end through the built binary: a user's whole session, then a secret-leak scan of everything it produced. */
import { readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fs.js';
import { cli, findLeaks, outputs, secretsIn } from '../helpers/cli.js';
import { SIGNATURES, V1 } from '../stem/vectors.js';

let dir: string;
const secrets = new Set<string>();
const config = () => join(dir, 'stem-rotor.yaml');
const collectSecrets = () => {
  for (const file of ['producers.env', 'workers.env']) for (const secret of secretsIn(join(dir, file))) secrets.add(secret);
};
const run = (...args: string[]) => {
  const result = cli([...args, '--config', config()]);
  collectSecrets();
  return result;
};
const json = (...args: string[]) => {
  const result = run(...args, '--json');
  return { ...result, body: JSON.parse(result.stdout) };
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function allFiles(root: string): string[] {
  return readdirSync(root).flatMap((entry) => {
    const path = join(root, entry);
    return statSync(path).isDirectory() ? allFiles(path) : [path];
  });
}

beforeAll(() => {
  dir = tempDir('stem-rotor-cli-');
  const init = cli(['init', '--dir', dir]);
  expect(init.code).toBe(0);
  writeFileSync(config(), readFileSync(config(), 'utf8').replace('propagate: 3s', 'propagate: 1s').replace('drain: 3s', 'drain: 1s'));
  collectSecrets();
});

describe('stem-rotor CLI', () => {
  it('init refuses to overwrite without --force', () => {
    expect(cli(['init', '--dir', dir]).code).toBe(2);
  });

  it('status --json shows a stable ring with one active key', () => {
    const { code, body } = json('status', 'demo');
    expect(code).toBe(0);
    expect(body).toMatchObject({ phase: 'stable', gates: [] });
    expect(body.keys).toEqual([expect.objectContaining({ id: expect.stringMatching(/^demo-\d{8}-[0-9a-f]{4}$/), active: true, fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) })]);
  });

  it('reads a config saved on Windows: a byte-order mark and CRLF line ends', () => {
    const windows = join(dir, 'windows.yaml');
    writeFileSync(windows, `\uFEFF${readFileSync(config(), 'utf8').replace(/\n/g, '\r\n')}`);
    const result = cli(['status', 'demo', '--json', '--config', windows]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ring: 'demo', phase: 'stable' });
  });

  it('check reaches and lints every target', () => {
    const { code, body } = json('check', 'demo');
    expect(code).toBe(0);
    expect(body.rings[0]).toMatchObject({ ring: 'demo', ok: true, agreement: 'every target agrees with the ring' });
  });

  it('a full rotation: dry run, start, blocked advance, advance, advance', async () => {
    const before = readFileSync(join(dir, 'producers.env'));
    const dry = json('rotate', 'start', 'demo', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.body.outcome).toBe('planned');
    expect(readFileSync(join(dir, 'producers.env'))).toEqual(before);

    const start = json('rotate', 'start', 'demo');
    expect(start.code).toBe(0);
    expect(start.body.phase).toBe('added');
    const newId = start.body.newKey.id;

    const blocked = json('rotate', 'advance', 'demo');
    expect(blocked.code).toBe(3);
    expect(blocked.body).toMatchObject({ code: 'GATE_BLOCKED', exitCode: 3 });
    expect(blocked.body.details[0]).toMatch(/^soak \(wait\)/);
    const status = json('status', 'demo');
    expect(status.body.gates).toEqual([expect.objectContaining({ name: 'soak', verdict: 'wait', reason: expect.any(String) })]);

    await sleep(1100);
    expect(json('rotate', 'advance', 'demo').body.phase).toBe('activated');
    expect(readFileSync(join(dir, 'workers.env'), 'utf8')).toContain(`STEM_SIGNING_ACTIVE_KEY=${newId}`);
    await sleep(1100);
    const dropped = json('rotate', 'advance', 'demo');
    expect(dropped.body.phase).toBe('stable');
    const final = json('status', 'demo').body;
    expect(final.keys.map((k: { id: string }) => k.id)).toEqual([newId]);
    expect(readFileSync(join(dir, 'producers.env'), 'utf8')).toMatch(/^# Stem producer environment[^\n]*\nSTEM_BROKER_URL=redis:\/\/127\.0\.0\.1:6379\/0\n/);
  });

  it('advance --override needs --reason and is audited', () => {
    expect(json('rotate', 'start', 'demo').code).toBe(0);
    expect(run('rotate', 'advance', 'demo', '--override', 'soak').code).toBe(2);
    const result = json('rotate', 'advance', 'demo', '--override', 'soak', '--reason', 'change window closing');
    expect(result.code).toBe(0);
    expect(result.body.phase).toBe('activated');
    const audit = json('audit', 'demo').body as { action: string; details?: { reason?: string } }[];
    expect(audit.some((event) => event.action === 'override' && event.details?.reason === 'change window closing')).toBe(true);
    expect(json('rotate', 'abort', 'demo').body.phase).toBe('added');
  });

  it('revoke needs --reason and --yes, and tells the operator what follows', () => {
    const active = json('status', 'demo').body.keys.find((k: { active: boolean }) => k.active).id;
    expect(run('revoke', 'demo', active, '--yes').code).toBe(2);
    expect(run('revoke', 'demo', active, '--reason', 'leak').code).toBe(2);
    const dry = json('revoke', 'demo', active, '--reason', 'leak', '--dry-run');
    expect(dry.code).toBe(0);
    const revoked = json('revoke', 'demo', active, '--reason', 'key pasted in chat', '--yes');
    expect(revoked.code).toBe(0);
    expect(revoked.body.followUp.join('\n')).toMatch(/restart every Stem process/);
    const status = json('status', 'demo').body;
    expect(status).toMatchObject({ phase: 'stable', revokedKeyIds: [active] });
  });

  it('run --once starts a rotation of an over-age key and advances it with autoAdvance', async () => {
    writeFileSync(config(), readFileSync(config(), 'utf8').replace('maxAge: 30d', 'maxAge: 1ms'));
    const first = json('run', '--once');
    expect(first.code).toBe(0);
    expect(first.body[0]).toMatchObject({ ring: 'demo', action: 'start', phase: 'added' });
    const second = json('run', '--once');
    expect(second.body[0]).toMatchObject({ outcome: 'blocked', phase: 'added' });
    await sleep(1100);
    expect(json('run', '--once').body[0]).toMatchObject({ phase: 'activated' });
    await sleep(1100);
    expect(json('run', '--once').body[0]).toMatchObject({ phase: 'stable' });
    writeFileSync(config(), readFileSync(config(), 'utf8').replace('maxAge: 1ms', 'maxAge: 30d'));
  });

  it('STEM_ROTOR_CONFIG names the config when --config is absent', () => {
    const result = cli(['status', 'demo', '--json'], { env: { STEM_ROTOR_CONFIG: config() } });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).ring).toBe('demo');
  });

  it('audit --json lists every command with who and when', () => {
    const { code, body } = json('audit', 'demo');
    expect(code).toBe(0);
    expect(body.length).toBeGreaterThan(10);
    expect(body[0]).toMatchObject({ ring: 'demo', actor: { user: expect.any(String), host: expect.any(String) }, time: expect.any(String) });
    expect(body.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['adopt', 'start', 'advance', 'override', 'abort', 'revoke']));
  });
});

describe('keys, envelopes and lint', () => {
  it('keys generate prints a config Stem accepts, for both algorithms', () => {
    for (const algorithm of ['hmac-sha256', 'ed25519']) {
      const file = join(dir, `generated-${algorithm}.env`);
      const generated = cli(['keys', 'generate', '--algorithm', algorithm, '--id', 'primary', '--out', file]);
      expect(generated.code).toBe(0);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, 'utf8')).toContain('STEM_SIGNING_ACTIVE_KEY=primary');
      const lint = cli(['lint', file, '--json']);
      expect(lint.code).toBe(0);
      expect(JSON.parse(lint.stdout)).toMatchObject({ ok: true, findings: [] });
    }
    const printed = cli(['keys', 'generate']);
    expect(printed.stdout).toMatch(/^STEM_SIGNING_ALGORITHM=hmac-sha256\nSTEM_SIGNING_KEYS=key-\d{8}-[0-9a-f]{4}:[A-Za-z0-9+/]{43}=\nSTEM_SIGNING_ACTIVE_KEY=key-/);
    outputs.pop();
    outputs.pop(); // this command's job is to print a secret: keep it out of the leak scan
    expect(cli(['keys', 'generate', '--id', 'a:b']).code).toBe(2);
    expect(cli(['keys', 'generate', '--algorithm', 'rsa']).code).toBe(2);
  });

  it('envelope sign reproduces vector V1 and verify accepts it; tampering fails with Stem\'s message', () => {
    const envFile = join(dir, 'vector.env');
    writeFileSync(envFile, 'STEM_SIGNING_KEYS=primary:YW5vdGhlci1zZWNyZXQ=\nSTEM_SIGNING_ACTIVE_KEY=primary\n');
    const input = join(dir, 'v1.json');
    writeFileSync(input, JSON.stringify(V1));
    const signed = cli(['envelope', 'sign', '--file', envFile, '--in', input]);
    expect(signed.code).toBe(0);
    const envelope = JSON.parse(signed.stdout);
    expect(Object.keys(envelope)).toEqual(['id', 'name', 'args', 'headers', 'enqueuedAt', 'notBefore', 'priority', 'attempt', 'maxRetries', 'visibilityTimeout', 'queue', 'meta']);
    expect(envelope.headers).toEqual({ 'stem-signature': SIGNATURES.V1.anotherSecret, 'stem-signature-key': 'primary' });

    const signedFile = join(dir, 'v1.signed.json');
    writeFileSync(signedFile, signed.stdout);
    expect(cli(['envelope', 'verify', '--file', envFile, '--in', signedFile]).code).toBe(0);
    writeFileSync(signedFile, JSON.stringify({ ...envelope, args: { value: 2 } }));
    const tampered = cli(['envelope', 'verify', '--file', envFile, '--in', signedFile]);
    expect(tampered).toMatchObject({ code: 1, stdout: 'signature mismatch\n' });
    writeFileSync(signedFile, JSON.stringify({ ...envelope, headers: { ...envelope.headers, 'stem-signature-key': 'gone' } }));
    expect(cli(['envelope', 'verify', '--file', envFile, '--in', signedFile]).stdout).toBe('unknown signing key "gone"\n');
    expect(cli(['envelope', 'verify', '--file', envFile, '--in', '-'], { input: JSON.stringify(V1) }).stdout).toBe('missing signature headers\n');
  });

  it('lint exits 1 on error-level findings and names them', () => {
    const file = join(dir, 'bad.env');
    writeFileSync(file, 'STEM_SIGNING_ALGORITHM=ed25519\nSTEM_SIGNING_KEYS=a:YWJj\nSTEM_SIGNING_ACTIVE_KEY=a\n');
    const result = cli(['lint', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/error SR002 STEM_SIGNING_PUBLIC_KEYS: algorithm is ed25519/);
  });
});

// Runs after the session above (tests in a file run in order): a counted test, not a hook.
it('S8: no generated secret in any stdout, stderr, state or audit file of the session', () => {
  const stateFiles = allFiles(join(dir, 'state')).map((file) => readFileSync(file, 'utf8'));
  expect(stateFiles.length).toBeGreaterThan(2);
  expect(secrets.size).toBeGreaterThan(8);
  expect(findLeaks(secrets, [...outputs, ...stateFiles])).toEqual([]);
});

describe('flags Node does not own', () => {
  it('lint and envelope take --file (or a positional): Node 20 would swallow --env-file, fail on a missing file and load an existing one into the environment', () => {
    const dir = tempDir('stem-rotor-flags-');
    const missing = cli(['lint', join(dir, 'nope.env')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`stem-rotor: lint: ${join(dir, 'nope.env')}: file not found\n`);
    writeFileSync(join(dir, 'w.env'), 'STEM_SIGNING_KEYS=primary:YW5vdGhlci1zZWNyZXQ=\nSTEM_SIGNING_ACTIVE_KEY=primary\nSTEM_ROTOR_CONFIG=/should/not/load.yaml\n');
    expect(cli(['lint', '--file', join(dir, 'w.env'), '--json']).code).toBe(0);
    expect(cli(['lint', join(dir, 'w.env')]).stdout).toContain('warning SR101 STEM_SIGNING_KEYS');
    expect(cli(['lint']).stderr).toContain('lint needs the env file: stem-rotor lint FILE (or --file FILE)');
    writeFileSync(join(dir, 'e.json'), JSON.stringify(V1));
    expect(cli(['envelope', 'sign', '--file', join(dir, 'w.env'), '--in', join(dir, 'e.json')]).code).toBe(0);
  });
});

describe('the README holds everywhere', () => {
  it('bare stem-rotor is a usage error; --help is not', () => {
    const bare = cli([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout + bare.stderr).toContain('Usage: stem-rotor');
    expect(cli(['--help']).code).toBe(0);
  });

  it('finds stem-rotor.yml and stem-rotor.json when no config is named; audit of an unknown ring is exit 2', () => {
    const dir = tempDir('stem-rotor-discover-');
    expect(cli(['init', '--dir', dir, '--json']).stdout).toContain('"activeKeyId"');
    renameSync(join(dir, 'stem-rotor.yaml'), join(dir, 'stem-rotor.yml'));
    expect(cli(['status', 'demo'], { cwd: dir }).code).toBe(0);
    writeFileSync(join(dir, 'stem-rotor.json'), JSON.stringify(parseYaml(readFileSync(join(dir, 'stem-rotor.yml'), 'utf8'))));
    renameSync(join(dir, 'stem-rotor.yml'), join(dir, 'stem-rotor.yml.bak'));
    expect(cli(['status', 'demo'], { cwd: dir }).code).toBe(0);
    const unknown = cli(['audit', 'nosuch'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown ring "nosuch"');
  });

  it('keys generate --json; lint and envelope take no --config they would ignore', () => {
    const generated = JSON.parse(cli(['keys', 'generate', '--json', '--id', 'k1']).stdout);
    expect(Object.keys(generated)).toEqual(['STEM_SIGNING_ALGORITHM', 'STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY']);
    expect(generated.STEM_SIGNING_ACTIVE_KEY).toBe('k1');
    expect(cli(['lint', '/dev/null', '--config', 'x.yaml']).stderr).toContain("unknown option '--config'");
  });
});


/**
 * The files real deployments have, through the built CLI: links, service owners, read-only files
 * and mounts, FIFOs, every env-file dialect, crash residue, stale locks, partial writes, state that
 * is not state, torn and tampered audit trails, refused commands that must change nothing.
 * Permission cases run as an unprivileged uid (setpriv), since root ignores file modes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, findLeaks, outputs, secretsIn } from '../helpers/cli.js';
import { snapshotTree, tempDir } from '../helpers/fs.js';

const NOBODY = 65534;
const mounts: string[] = [];
const sleepers: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const mount of mounts) spawnSync('umount', [mount]);
  for (const sleeper of sleepers) sleeper.kill('SIGKILL');
});

/** A fresh `init` demo with zero soak windows, so rotations step straight through. */
function demo(): { dir: string; config: string; run: (...args: string[]) => ReturnType<typeof cli> } {
  const dir = tempDir('stem-rotor-field-');
  chmodSync(dir, 0o755);
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  const config = join(dir, 'stem-rotor.yaml');
  writeFileSync(config, readFileSync(config, 'utf8').replace('propagate: 3s', 'propagate: 0s').replace('drain: 3s', 'drain: 0s'));
  return { dir, config, run: (...args) => cli([...args, '--config', config]) };
}

/** The CLI as an unprivileged user (root ignores file modes). */
function cliAs(uid: number, args: readonly string[]) {
  return cli(args, { runAs: uid });
}

function liveSleeper(): number {
  const child = spawn('sleep', ['60']);
  sleepers.push(child);
  return child.pid as number;
}

function filesIn(root: string): string[] {
  return readdirSync(root).flatMap((entry) => (statSync(join(root, entry)).isDirectory() ? filesIn(join(root, entry)) : [join(root, entry)]));
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);

describe('symlinked targets', () => {
  it('writes the resolved file and keeps the link; status and check show where it leads', () => {
    const { dir, run } = demo();
    mkdirSync(join(dir, 'real'));
    renameSync(join(dir, 'producers.env'), join(dir, 'real', 'producers.env'));
    symlinkSync('real/producers.env', join(dir, 'producers.env'));
    const start = run('rotate', 'start', 'demo', '--json');
    expect(start.code).toBe(0);
    const newId = JSON.parse(start.stdout).newKey.id as string;
    expect(lstatSync(join(dir, 'producers.env')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'real', 'producers.env'), 'utf8')).toContain(newId);
    expect(readdirSync(join(dir, 'real'))).toEqual(['producers.env']);
    const status = JSON.parse(run('status', 'demo', '--json').stdout);
    expect(JSON.stringify(status)).toContain(`${join(dir, 'producers.env')} -> ${join(dir, 'real', 'producers.env')}`);
    const check = run('check', 'demo');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`-> ${join(dir, 'real', 'producers.env')}`);
  });

  it('two rings reaching one file through different links are refused as one place (exit 2)', () => {
    const { dir, config, run } = demo();
    symlinkSync('workers.env', join(dir, 'alias.env'));
    const text = readFileSync(config, 'utf8');
    writeFileSync(config, `${text}  other:\n    targets:\n      - name: w\n        provider: dotenv\n        path: alias.env\n`);
    const result = run('check');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('rings.other: target "w" uses file');
    expect(result.stderr).toContain('already used by demo/workers');
  });

  it('a file on a read-only mount (as Kubernetes ..data volumes are) is refused before anything is written', () => {
    const { dir, run } = demo();
    mkdirSync(join(dir, 'source'));
    mkdirSync(join(dir, 'mounted'));
    renameSync(join(dir, 'workers.env'), join(dir, 'source', 'workers.env'));
    expect(spawnSync('mount', ['--bind', join(dir, 'source'), join(dir, 'mounted')]).status).toBe(0);
    mounts.push(join(dir, 'mounted'));
    expect(spawnSync('mount', ['-o', 'remount,ro,bind', join(dir, 'mounted')]).status).toBe(0);
    symlinkSync('mounted/workers.env', join(dir, 'workers.env'));
    const before = snapshotTree(dir);
    const result = run('rotate', 'start', 'demo');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot create files in ${join(dir, 'mounted')}: read-only file system (EROFS); the file is on a read-only mount`);
    noStackTrace(result.stderr);
    expect(snapshotTree(dir)).toEqual(before);
  });
});

describe('owners, modes and special files', () => {
  it('a service-owned target keeps owner, group and mode after a rotation run as root', () => {
    const { dir, run } = demo();
    chownSync(join(dir, 'workers.env'), NOBODY, NOBODY);
    chmodSync(join(dir, 'workers.env'), 0o640);
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    const stat = statSync(join(dir, 'workers.env'));
    expect([stat.uid, stat.gid, stat.mode & 0o7777]).toEqual([NOBODY, NOBODY, 0o640]);
  });

  it('an owner an unprivileged run cannot keep is refused before anything is written, naming file, owner and what to do', () => {
    const { dir, config } = demo();
    for (const entry of ['.', 'producers.env']) chownSync(join(dir, entry), 1000, 1000);
    chmodSync(join(dir, 'workers.env'), 0o666); // writable by anyone, but owned by root
    const before = snapshotTree(dir);
    const result = cliAs(1000, ['rotate', 'start', 'demo', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`target "workers": ${join(dir, 'workers.env')} is owned by uid 0 gid 0; stem-rotor runs as uid 1000`);
    expect(result.stderr).toContain('Run it as that user or as root');
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('a read-only (0444) target is refused (exit 1) naming the file, as root and as its owner; nothing is written anywhere', () => {
    const { dir, config, run } = demo();
    chmodSync(join(dir, 'workers.env'), 0o444);
    const before = snapshotTree(dir);
    const asRoot = run('rotate', 'start', 'demo');
    expect(asRoot.code).toBe(1);
    expect(asRoot.stderr).toContain(`${join(dir, 'workers.env')} is read-only (mode 0444)`);
    expect(asRoot.stderr.trim()).toMatch(/Nothing was written; once fixed, run: stem-rotor rotate start demo$/);
    for (const entry of ['.', 'producers.env', 'workers.env']) chownSync(join(dir, entry), 1000, 1000);
    const asOwner = cliAs(1000, ['rotate', 'start', 'demo', '--config', config]);
    expect(asOwner.code).toBe(1);
    expect(asOwner.stderr).toContain('is read-only (mode 0444)');
    expect([...snapshotTree(dir).entries()]).toEqual([...before.entries()]);
  });

  it('a FIFO as target is refused at once (exit 2) by status, check and rotate, naming what it is', () => {
    const { dir, run } = demo();
    renameSync(join(dir, 'workers.env'), join(dir, 'workers.env.bak'));
    expect(spawnSync('mkfifo', [join(dir, 'workers.env')]).status).toBe(0);
    for (const args of [['status', 'demo'], ['check', 'demo'], ['rotate', 'start', 'demo']]) {
      const started = Date.now();
      const result = run(...args);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(result.code).toBe(2);
      expect(result.stderr + result.stdout).toContain(`${join(dir, 'workers.env')} is a FIFO (named pipe), not a regular file`);
    }
  });

  it('an unwritable state directory is one line naming path and operation (exit 1), no stack trace', () => {
    const { dir, config } = demo();
    for (const entry of ['.', 'producers.env', 'workers.env']) chownSync(join(dir, entry), 1000, 1000);
    mkdirSync(join(dir, 'state'), { mode: 0o755 }); // root-owned: uid 1000 cannot create in it
    const result = cliAs(1000, ['rotate', 'start', 'demo', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^stem-rotor: cannot \\S+( \\S+)* ${join(dir, 'state')}\\S*: permission denied \\(EACCES\\)`));
    noStackTrace(result.stderr);
  });

  it('a full disk (ENOSPC) is one line naming the path; targets stay whole and no temp file is left', () => {
    const { dir } = demo();
    const disk = join(dir, 'disk');
    mkdirSync(disk);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk]).status).toBe(0);
    mounts.push(disk);
    for (const file of ['stem-rotor.yaml', 'producers.env', 'workers.env']) writeFileSync(join(disk, file), readFileSync(join(dir, file)));
    spawnSync('sh', ['-c', `cat /dev/zero > ${join(disk, 'filler')} 2>/dev/null`]);
    const before = { producers: readFileSync(join(disk, 'producers.env')), workers: readFileSync(join(disk, 'workers.env')) };
    const result = cli(['rotate', 'start', 'demo', '--config', join(disk, 'stem-rotor.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^stem-rotor: cannot \\S+( \\S+)* ${disk}/\\S+: no space left on device \\(ENOSPC\\)`));
    noStackTrace(result.stderr);
    expect(readFileSync(join(disk, 'producers.env')).equals(before.producers)).toBe(true);
    expect(readFileSync(join(disk, 'workers.env')).equals(before.workers)).toBe(true);
    expect(filesIn(disk).filter((file) => file.endsWith('.tmp'))).toEqual([]);
  });

  it('keys generate --out onto an existing file is one line (exit 2), the file untouched', () => {
    const { dir } = demo();
    const result = cli(['keys', 'generate', '--out', join(dir, 'workers.env')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`stem-rotor: cannot create ${join(dir, 'workers.env')}: already exists (EEXIST); --out never overwrites; choose a new file\n`);
  });
});

describe('env-file dialects survive byte for byte', () => {
  it('a real-world file (BOM, CRLF and LF mixed, quotes, export, inline comments, Latin-1) changes only the value bytes over a whole rotation', () => {
    const { dir, run } = demo();
    const path = join(dir, 'workers.env');
    const keys = /STEM_SIGNING_KEYS=(\S+)/.exec(readFileSync(path, 'utf8'))?.[1] as string;
    const active = /STEM_SIGNING_ACTIVE_KEY=(\S+)/.exec(readFileSync(path, 'utf8'))?.[1] as string;
    const original = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(`# Worker env \u2014 managed by ops\r\nexport STEM_SIGNING_ALGORITHM=hmac-sha256\r\n# caf`),
      Buffer.from([0xe9]),
      Buffer.from(` (Latin-1 byte)\nSTEM_SIGNING_KEYS="${keys}"   # rotated by stem-rotor\r\nSTEM_SIGNING_ACTIVE_KEY='${active}'\nDATABASE_URL=postgres://u:p@db/x # keep\nLAST=1`),
    ]);
    writeFileSync(path, original);
    for (const step of [['rotate', 'start', 'demo'], ['rotate', 'advance', 'demo'], ['rotate', 'advance', 'demo']]) expect(run(...step).code).toBe(0);
    const after = readFileSync(path);
    const newKeys = /STEM_SIGNING_KEYS="([^"]+)"/.exec(after.toString('latin1'))?.[1] as string;
    const newActive = /STEM_SIGNING_ACTIVE_KEY='([^']+)'/.exec(after.toString('latin1'))?.[1] as string;
    expect(newActive).not.toBe(active);
    const restored = after.toString('latin1').replace(newKeys, keys).replace(`'${newActive}'`, `'${active}'`);
    expect(Buffer.from(restored, 'latin1').equals(original)).toBe(true);
  });

  it('docker --env-file: a quoted value reaches Stem with its quotes, so check, lint and rotate refuse it naming the line', () => {
    const { dir, config, run } = demo();
    writeFileSync(config, readFileSync(config, 'utf8').replace('path: workers.env', 'path: workers.env\n        dialect: docker'));
    const path = join(dir, 'workers.env');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/STEM_SIGNING_KEYS=(\S+)/, 'STEM_SIGNING_KEYS="$1"'));
    const check = run('check', 'demo');
    expect(check.code).toBe(2);
    expect(check.stdout).toContain('line 5 (STEM_SIGNING_KEYS): a docker reader sees a different value than written');
    const lint = cli(['lint', path, '--dialect', 'docker']);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toContain('error SR010 STEM_SIGNING_KEYS: line 5');
    expect(cli(['lint', path]).code).toBe(0);
    const before = snapshotTree(dir);
    expect(run('rotate', 'start', 'demo').code).toBe(2);
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('systemd: an unquoted inline comment is part of the value and an export line is ignored, both flagged', () => {
    const { dir } = demo();
    const path = join(dir, 'workers.env');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/STEM_SIGNING_ACTIVE_KEY=(\S+)/, 'STEM_SIGNING_ACTIVE_KEY=$1 # current'));
    const lint = cli(['lint', path, '--dialect', 'systemd']);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toContain('SR010 STEM_SIGNING_ACTIVE_KEY: line 6: a systemd reader sees a different value than written');
    writeFileSync(path, readFileSync(path, 'utf8').replace('STEM_SIGNING_KEYS=', 'export STEM_SIGNING_KEYS='));
    const exported = cli(['lint', path, '--dialect', 'systemd']);
    expect(exported.code).toBe(2);
    expect(exported.stderr).toContain('line 5 (STEM_SIGNING_KEYS) starts with "export"; systemd EnvironmentFile ignores the whole line');
  });

  it('a keyIdPrefix the dialects cannot carry unquoted is a config error (exit 2)', () => {
    const { config, run } = demo();
    for (const prefix of ['demo#', 'demo"', "demo'", 'demo$', 'de mo-']) {
      writeFileSync(config, readFileSync(config, 'utf8').replace(/keyIdPrefix: .*/, () => `keyIdPrefix: '${prefix.replace(/'/g, "''")}'`));
      const result = run('check', 'demo');
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('rings.demo.keyIdPrefix: use letters, digits');
    }
  });
});

describe('crash residue and stale locks', () => {
  it('temp files of dead writers are reported by check and removed (and audited) by the next command holding the lease', () => {
    const { dir, run } = demo();
    const residue = [join(dir, '.workers.env.4000001.tmp'), join(dir, '.producers.env.stem-rotor-4000002-0badf00d.tmp')];
    for (const file of residue) writeFileSync(file, readFileSync(join(dir, 'workers.env')));
    mkdirSync(join(dir, 'state', 'rings'), { recursive: true });
    writeFileSync(join(dir, 'state', 'rings', 'demo.json.4000003.tmp'), '{}');
    const check = run('check', 'demo');
    expect(check.code).toBe(0);
    for (const file of [...residue, join(dir, 'state', 'rings', 'demo.json.4000003.tmp')]) expect(check.stdout).toContain(`warning: temp file ${file} left by a crashed writer`);
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(join(dir, 'state', 'rings')).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    const audit = JSON.parse(run('audit', 'demo', '--json').stdout) as { details?: { removedTempFiles?: string[] } }[];
    expect(audit.flatMap((event) => event.details?.removedTempFiles ?? []).sort()).toEqual([...residue].sort());
  });

  it('locks left by a crashed process are broken at once and audited; a live holder is named with its expiry', () => {
    const { dir, run } = demo();
    const dead = { pid: 4_000_004, host: hostname(), startedAt: '2026-11-28T00:00:00.000Z' };
    writeFileSync(join(dir, 'workers.env.lock'), JSON.stringify(dead));
    mkdirSync(join(dir, 'state', 'rings'), { recursive: true });
    writeFileSync(join(dir, 'state', 'rings', 'demo.lease.mutex'), JSON.stringify(dead));
    const started = Date.now();
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const breaks = (JSON.parse(run('audit', 'demo', '--json').stdout) as { action: string; details: { lock: string } }[]).filter((event) => event.action === 'break-lock');
    expect(breaks.map((event) => event.details.lock).sort()).toEqual([join(dir, 'state', 'rings', 'demo.lease.mutex'), join(dir, 'workers.env.lock')]);
    const live = { ...dead, pid: liveSleeper() };
    writeFileSync(join(dir, 'state', 'rings', 'demo.lease.mutex'), JSON.stringify(live));
    const held = run('rotate', 'advance', 'demo');
    expect(held.code).toBe(4);
    expect(held.stderr).toMatch(new RegExp(`demo.lease.mutex is held by pid ${live.pid} on ${hostname()} since 2026-11-28T00:00:00.000Z; it expires at 20\\d\\d-`));
  });
});

describe('partial writes', () => {
  it('first target written, second locked by a live writer: exit 5 listing written and failed; a re-run converges', () => {
    const { dir, run } = demo();
    writeFileSync(join(dir, 'workers.env.lock'), JSON.stringify({ pid: liveSleeper(), host: hostname(), startedAt: new Date().toISOString() }));
    const result = run('rotate', 'start', 'demo', '--json');
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/start: written producers; failed workers \(target "workers": .*workers\.env\.lock is held by pid \d+/);
    expect(result.stderr).toContain('re-run `stem-rotor rotate advance demo` to converge');
    noStackTrace(result.stderr);
    expect(JSON.parse(result.stdout)).toMatchObject({ exitCode: 5, details: [expect.stringContaining('workers: ')] });
    const sleeper = sleepers[sleepers.length - 1];
    sleeper?.kill('SIGKILL');
    spawnSync('sleep', ['0.2']);
    expect(run('rotate', 'advance', 'demo').code).toBe(0);
    expect(run('check', 'demo').code).toBe(0);
    expect(JSON.parse(run('status', 'demo', '--json').stdout)).toMatchObject({ phase: 'added' });
  });

  it('second target in a directory the user cannot write: refused before the first is written (exit 1)', () => {
    const { dir, config } = demo();
    mkdirSync(join(dir, 'locked'));
    renameSync(join(dir, 'workers.env'), join(dir, 'locked', 'workers.env'));
    writeFileSync(config, readFileSync(config, 'utf8').replace('path: workers.env', 'path: locked/workers.env'));
    for (const entry of ['.', 'producers.env', 'locked/workers.env']) chownSync(join(dir, entry), 1000, 1000);
    const before = snapshotTree(dir);
    const result = cliAs(1000, ['rotate', 'start', 'demo', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot create files in ${join(dir, 'locked')}: permission denied (EACCES)`);
    expect(snapshotTree(dir)).toEqual(before);
  });
});

describe('state and audit that are not what they should be', () => {
  it('state that is not state is exit 2 naming file and field, nothing written, never taken as no state', () => {
    const { dir, run } = demo();
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    const statePath = join(dir, 'state', 'rings', 'demo.json');
    const good = JSON.parse(readFileSync(statePath, 'utf8'));
    for (const [text, field] of [['[]', '(top level)'], ['{"keys":"oops"}', 'schema'], ['null', '(top level)'], [JSON.stringify({ ...good, keys: 'oops' }), 'keys']] as const) {
      writeFileSync(statePath, text);
      const before = snapshotTree(dir);
      for (const args of [['status', 'demo'], ['rotate', 'start', 'demo'], ['rotate', 'advance', 'demo'], ['revoke', 'demo', good.activeKeyId, '--reason', 'x', '--yes']]) {
        const result = run(...args);
        expect(result.code).toBe(2);
        expect(result.stderr).toContain(`state ${statePath} is invalid at ${field}`);
        noStackTrace(result.stderr);
      }
      expect(snapshotTree(dir)).toEqual(before);
    }
  });

  it('a torn audit line is reported and skipped, later events are kept; audit --verify passes, then finds an edit', () => {
    const { dir, run } = demo();
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    const auditPath = join(dir, 'state', 'audit.jsonl');
    appendFileSync(auditPath, '{"time":"2026-11-28T00:00:00.000Z","ring":"demo","acto');
    expect(run('rotate', 'advance', 'demo').code).toBe(0);
    const audit = run('audit', 'demo', '--json');
    expect(audit.code).toBe(0);
    expect(audit.stderr).toMatch(/warning: .*audit\.jsonl line \d+: torn or unreadable record \(skipped\)/);
    expect((JSON.parse(audit.stdout) as { action: string; outcome: string }[]).some((event) => event.action === 'advance' && event.outcome === 'ok')).toBe(true);
    const verify = run('audit', '--verify');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('chain intact');
    const lines = readFileSync(auditPath, 'utf8').split('\n');
    lines[1] = (lines[1] as string).replace('"outcome":"', '"outcome":"x');
    writeFileSync(auditPath, lines.join('\n'));
    const broken = run('audit', '--verify');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`BROKEN at ${auditPath} line 3`);
  });

  it('a refused revoke (unknown key id) changes nothing: no lease pre-empted, no audit event', () => {
    const { dir, run } = demo();
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    const before = snapshotTree(dir);
    const result = run('revoke', 'demo', 'demo-19990101-dead', '--reason', 'x', '--yes');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('demo-19990101-dead');
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('abort of a transition that has written nothing always succeeds, even one whose key id no target can carry', () => {
    const { dir, run } = demo();
    expect(run('status', 'demo').code).toBe(0);
    expect(run('rotate', 'start', 'demo', '--dry-run').code).toBe(0);
    expect(run('rotate', 'start', 'demo').code).toBe(0);
    expect(run('rotate', 'abort', 'demo').code).toBe(0);
    const statePath = join(dir, 'state', 'rings', 'demo.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8'));
    expect(state.rotation).toBeNull();
    // an interrupted start planned by an older version with a prefix that needs quoting
    const stuck = { ...state, transition: { id: 't-1', kind: 'start', from: { keyIds: [state.activeKeyId], activeKeyId: state.activeKeyId }, desired: { keyIds: [state.activeKeyId, 'demo#-20261128-0001'], activeKeyId: state.activeKeyId }, generatedKeyId: 'demo#-20261128-0001', tolerated: [], parallel: false, startedAt: state.updatedAt, gates: [], writes: { producers: { target: 'producers', status: 'pending', error: 'refusing to write' } }, rotationId: 'rot-1', revokedKeyId: null } };
    writeFileSync(statePath, JSON.stringify(stuck));
    expect(run('rotate', 'advance', 'demo').code).toBe(2);
    const abort = run('rotate', 'abort', 'demo');
    expect(abort.code).toBe(0);
    expect(abort.stdout).toContain('discarded the start that had written nothing');
    expect(JSON.parse(readFileSync(statePath, 'utf8')).transition).toBeNull();
    expect(run('check', 'demo').code).toBe(0);
  });
});

describe('no secret leaks from any of this', () => {
  it('outputs of every command above hold no key material of these rings', () => {
    const secrets = new Set<string>();
    for (const root of readdirSync(process.env.TMPDIR ?? '/tmp').filter((name) => name.startsWith('stem-rotor-field-'))) {
      for (const file of ['producers.env', 'workers.env', 'real/producers.env', 'source/workers.env', 'locked/workers.env']) {
        const path = join(process.env.TMPDIR ?? '/tmp', root, file);
        if (!statSync(path, { throwIfNoEntry: false })?.isFile()) continue; // moved, or the FIFO
        try {
          for (const secret of secretsIn(path)) secrets.add(secret);
        } catch {
          // deliberately unparseable content (a docker-quoted value): nothing to collect
        }
      }
    }
    expect(secrets.size).toBeGreaterThan(10);
    expect(findLeaks(secrets, outputs)).toEqual([]);
  });
});

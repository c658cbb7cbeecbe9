import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import createDotenvProvider from '../../providers/dotenv.js';
import { decodeEnvFile, dialectFindings, encodeEnvFile, parseEnvFile, renderEnvFile, type Dialect } from '../../src/envfile/codec.js';
import { ConfigError, ConflictError, TargetContentError } from '../../src/errors.js';
import { tempDir } from '../helpers/fs.js';

const FIELDS = ['STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY'];

function fixture(content: string | Buffer, mode = 0o644) {
  const dir = tempDir();
  const path = join(dir, 'app.env');
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  return { dir, path, provider: createDotenvProvider({ target: 'app', path }) };
}

const values = (content: string, dialect: Dialect = 'dotenv') =>
  Object.fromEntries([...parseEnvFile(decodeEnvFile(Buffer.from(content, 'latin1')), FIELDS, dialect, 'app')].map(([name, a]) => [name, a.value]));
const render = (content: Buffer | string, set: Record<string, string>, dialect: Dialect = 'dotenv') =>
  encodeEnvFile(renderEnvFile(decodeEnvFile(Buffer.isBuffer(content) ? content : Buffer.from(content, 'latin1')), set, dialect, 'app'));

describe('env file reading, per dialect', () => {
  it('dotenv: plain, export-prefixed, quoted and commented values', () => {
    expect(values('A=1\nexport STEM_SIGNING_KEYS="k:YQ=="\n  STEM_SIGNING_ACTIVE_KEY = k   # the active one\n# STEM_SIGNING_KEYS=commented\n')).toEqual({ STEM_SIGNING_KEYS: 'k:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k' });
    expect(values("STEM_SIGNING_KEYS='a:b # c'\n")).toEqual({ STEM_SIGNING_KEYS: 'a:b # c' });
  });

  it('docker --env-file: quotes and inline comments are part of the value; export is not a variable', () => {
    expect(values('STEM_SIGNING_KEYS="k:YQ=="\nSTEM_SIGNING_ACTIVE_KEY=k # c\n', 'docker')).toEqual({ STEM_SIGNING_KEYS: '"k:YQ=="', STEM_SIGNING_ACTIVE_KEY: 'k # c' });
    expect(() => values('export STEM_SIGNING_KEYS=k:YQ==\n', 'docker')).toThrow(/docker --env-file rejects/);
    expect(() => values('STEM_SIGNING_KEYS =k:YQ==\n', 'docker')).toThrow(/whitespace before "="/);
    expect(values('STEM_SIGNING_KEYS= k:YQ==\n', 'docker')).toEqual({ STEM_SIGNING_KEYS: ' k:YQ==' });
  });

  it('systemd EnvironmentFile: quotes removed, # mid-line is literal, export lines ignored', () => {
    expect(values("STEM_SIGNING_KEYS=\"k:YQ==\"\nSTEM_SIGNING_ACTIVE_KEY='k'  \n", 'systemd')).toEqual({ STEM_SIGNING_KEYS: 'k:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k' });
    expect(values('STEM_SIGNING_ACTIVE_KEY=k # c\n', 'systemd')).toEqual({ STEM_SIGNING_ACTIVE_KEY: 'k # c' });
    expect(() => values('export STEM_SIGNING_KEYS=k:YQ==\n', 'systemd')).toThrow(/ignores the whole line/);
  });

  it('flags a line the declared reader sees differently than written, naming line and variable but no value', () => {
    const file = decodeEnvFile(Buffer.from('STEM_SIGNING_KEYS="k:c2VjcmV0"\nSTEM_SIGNING_ACTIVE_KEY=k\n'));
    const findings = dialectFindings(parseEnvFile(file, FIELDS, 'docker', 'app'), 'docker');
    expect(findings).toEqual([{ variable: 'STEM_SIGNING_KEYS', line: 1, message: expect.stringContaining('double quotes are part of it') }]);
    expect(JSON.stringify(findings)).not.toContain('c2VjcmV0');
    expect(dialectFindings(parseEnvFile(file, FIELDS, 'dotenv', 'app'), 'dotenv')).toEqual([]);
  });

  it('refuses a managed variable assigned twice and an unterminated quote', () => {
    expect(() => values('STEM_SIGNING_KEYS=a\nSTEM_SIGNING_KEYS=b\n')).toThrow(TargetContentError);
    expect(() => values('STEM_SIGNING_KEYS="a\n')).toThrow(/unterminated/);
    expect(Object.keys(values('A=1\nA=2\nSTEM_SIGNING_KEYS=x\n'))).toEqual(['STEM_SIGNING_KEYS']);
  });
});

describe('env file rewriting changes only the value bytes', () => {
  it('keeps quoting style, export, inline comments, spacing and order', () => {
    const content = '# head\nA=1\n\nexport STEM_SIGNING_KEYS="old:YQ==" # keys\nB="x y" # keep\nSTEM_SIGNING_ACTIVE_KEY = \'o\'   # active\n# tail';
    expect(render(content, { STEM_SIGNING_KEYS: 'new:YQ==,n2:Yg==', STEM_SIGNING_ACTIVE_KEY: 'new' }).toString('latin1')).toBe(
      '# head\nA=1\n\nexport STEM_SIGNING_KEYS="new:YQ==,n2:Yg==" # keys\nB="x y" # keep\nSTEM_SIGNING_ACTIVE_KEY = \'new\'   # active\n# tail',
    );
    expect(render('STEM_SIGNING_ACTIVE_KEY=o # the active one\n', { STEM_SIGNING_ACTIVE_KEY: 'new' }).toString()).toBe('STEM_SIGNING_ACTIVE_KEY=new # the active one\n');
  });

  it('keeps each line its own ending, a BOM, and Latin-1 and UTF-8 bytes elsewhere', () => {
    const content = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from('STEM_SIGNING_ACTIVE_KEY=o\r\n# caf'),
      Buffer.from([0xe9]), // Latin-1 é: not valid UTF-8, must survive
      Buffer.from('\nA=\u00fc\u00df\r\nSTEM_SIGNING_KEYS=o:YQ==\n'),
    ]);
    const out = render(content, { STEM_SIGNING_ACTIVE_KEY: 'n', STEM_SIGNING_KEYS: 'n:Yg==' });
    const expected = Buffer.from(content.toString('latin1').replace('KEY=o\r', 'KEY=n\r').replace('o:YQ==', 'n:Yg=='), 'latin1');
    expect(out.equals(expected)).toBe(true);
  });

  it('appends missing variables with the file\'s own line ending, ending an unterminated last line first', () => {
    expect(render('A=1\r\n', { STEM_SIGNING_ACTIVE_KEY: 'k' }).toString()).toBe('A=1\r\nSTEM_SIGNING_ACTIVE_KEY=k\r\n');
    expect(render('A=1', { STEM_SIGNING_ACTIVE_KEY: 'k' }).toString()).toBe('A=1\nSTEM_SIGNING_ACTIVE_KEY=k\n');
    expect(render('', { STEM_SIGNING_ACTIVE_KEY: 'k' }).toString()).toBe('STEM_SIGNING_ACTIVE_KEY=k\n');
  });

  it('refuses a value that its line could not carry as is', () => {
    expect(() => render('', { STEM_SIGNING_ACTIVE_KEY: 'a b' })).toThrow(/would need quoting/);
    expect(() => render('STEM_SIGNING_ACTIVE_KEY=x\n', { STEM_SIGNING_ACTIVE_KEY: 'demo#1' })).toThrow(/would need quoting/);
    expect(() => render('STEM_SIGNING_ACTIVE_KEY="x"\n', { STEM_SIGNING_ACTIVE_KEY: 'a"b' })).toThrow(/would need quoting/);
  });
});

describe('dotenv provider on real files', () => {
  it('reads with a content version; a write keeps the mode and changes only the value', async () => {
    const { path, provider } = fixture('A=1\nSTEM_SIGNING_KEYS=k:YQ==\n', 0o640);
    const snapshot = await provider.read(FIELDS);
    expect(snapshot.fields).toEqual({ STEM_SIGNING_KEYS: 'k:YQ==' });
    const { version } = await provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(readFileSync(path, 'utf8')).toBe('A=1\nSTEM_SIGNING_KEYS=k:YQ==\nSTEM_SIGNING_ACTIVE_KEY=k\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect((await provider.read(FIELDS)).version).toBe(version);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('compare-and-set: a write against a stale version fails and changes nothing', async () => {
    const { path, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n');
    const snapshot = await provider.read(FIELDS);
    writeFileSync(path, 'STEM_SIGNING_KEYS=k:Yg==\n');
    await expect(provider.write({ set: { STEM_SIGNING_KEYS: 'x:YQ==' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toBeInstanceOf(ConflictError);
    expect(readFileSync(path, 'utf8')).toBe('STEM_SIGNING_KEYS=k:Yg==\n');
  });

  it('writes through a symlink to the resolved file and keeps the link; two links are one lock', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'producers.env'), 'STEM_SIGNING_KEYS=k:YQ==\n', { mode: 0o600 });
    symlinkSync('real/producers.env', join(dir, 'producers.env'));
    const provider = createDotenvProvider({ target: 'p', path: join(dir, 'producers.env') });
    expect(provider.location).toBe(`${join(dir, 'producers.env')} -> ${join(dir, 'real', 'producers.env')}`);
    const snapshot = await provider.read(FIELDS);
    await provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(statSync(join(dir, 'producers.env'), { throwIfNoEntry: false })).toBeDefined();
    expect(readdirSync(dir).sort()).toEqual(['producers.env', 'real']);
    expect(readFileSync(join(dir, 'real', 'producers.env'), 'utf8')).toContain('STEM_SIGNING_ACTIVE_KEY=k');
    expect(execFileSync('readlink', [join(dir, 'producers.env')]).toString().trim()).toBe('real/producers.env');
    expect(readdirSync(join(dir, 'real'))).toEqual(['producers.env']);
  });

  it('refuses a read-only file (exit 1) before writing, and a FIFO at once (exit 2) without hanging', async () => {
    const { path, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n', 0o444);
    await expect(provider.preflightWrite?.()).rejects.toThrow(`${path} is read-only (mode 0444)`);
    const dir = tempDir();
    execFileSync('mkfifo', [join(dir, 'fifo.env')]);
    const fifo = createDotenvProvider({ target: 'f', path: join(dir, 'fifo.env') });
    const error = await fifo.read(FIELDS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(`target "f": ${join(dir, 'fifo.env')} is a FIFO (named pipe), not a regular file; point the target at the env file itself`);
  });

  it('a service-owned file keeps its owner and group when root rewrites it', async () => {
    const { path, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n', 0o640);
    chownSync(path, 65534, 65534);
    const snapshot = await provider.read(FIELDS);
    await provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    const stat = statSync(path);
    expect([stat.uid, stat.gid, stat.mode & 0o7777]).toEqual([65534, 65534, 0o640]);
  });

  it('a lock whose holder process is gone is broken at once and reported; a live holder is named with its expiry', async () => {
    const { path, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n');
    const snapshot = await provider.read(FIELDS);
    const child = spawn('sleep', ['30']);
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: child.pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    await expect(provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toThrow(
      new RegExp(`app.env.lock is held by pid ${child.pid} on ${hostname()} since 2026-01-01T00:00:00.000Z; it expires at \\S+ unless that process ends first`),
    );
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const notices: unknown[] = [];
    const noticing = createDotenvProvider({ target: 'app', path, notice: (action, details) => notices.push({ action, details }) });
    await noticing.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(readFileSync(path, 'utf8')).toContain('STEM_SIGNING_ACTIVE_KEY=k');
    expect(notices).toEqual([{ action: 'break-lock', details: expect.objectContaining({ why: 'holder process is gone', holder: expect.objectContaining({ pid: child.pid }) }) }]);
  });

  it('an old-format or foreign lock is honoured until it expires', async () => {
    const { path, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n');
    const snapshot = await provider.read(FIELDS);
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 1, host: 'another-host', startedAt: '2026-01-01T00:00:00.000Z' }));
    await expect(provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toThrow(/held by pid 1 on another-host/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    await provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(readFileSync(path, 'utf8')).toContain('STEM_SIGNING_ACTIVE_KEY=k');
  });

  it('finds and removes temp files of writers that are gone, never those of a live writer', async () => {
    const { dir, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n');
    const child = spawn('sleep', ['30']);
    writeFileSync(join(dir, `.app.env.stem-rotor-${child.pid}-0a0b0c0d.tmp`), 'live');
    writeFileSync(join(dir, '.app.env.999999.tmp'), 'legacy residue with a key');
    writeFileSync(join(dir, '.app.env.stem-rotor-999998-01020304.tmp'), 'residue');
    expect((await provider.residue?.())?.length).toBe(3);
    expect([...((await provider.removeResidue?.()) ?? [])].sort()).toEqual([join(dir, '.app.env.999999.tmp'), join(dir, '.app.env.stem-rotor-999998-01020304.tmp')]);
    expect(readdirSync(dir).sort()).toEqual([`.app.env.stem-rotor-${child.pid}-0a0b0c0d.tmp`, 'app.env']);
    child.kill('SIGKILL');
  });

  it('a missing file, or a link to one, is a clear error', async () => {
    const provider = createDotenvProvider({ target: 'gone', path: '/nonexistent/app.env' });
    await expect(provider.read(FIELDS)).rejects.toThrow('target "gone": /nonexistent/app.env: file not found');
    const dir = tempDir();
    symlinkSync('moved/app.env', join(dir, 'app.env'));
    await expect(createDotenvProvider({ target: 'dangling', path: join(dir, 'app.env') }).read(FIELDS)).rejects.toThrow(`target "dangling": ${join(dir, 'app.env')} is a link to moved/app.env, which does not exist`);
  });
});

import { readFileSync, statSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import createDotenvProvider, { parseDotenv, renderDotenv } from '../../providers/dotenv.js';
import { ConflictError, TargetContentError } from '../../src/errors.js';
import { tempDir } from '../helpers/fs.js';

const FIELDS = ['STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY'];

function fixture(content: string, mode = 0o644) {
  const dir = tempDir();
  const path = join(dir, 'app.env');
  writeFileSync(path, content, { mode });
  return { dir, path, provider: createDotenvProvider({ target: 'app', path }) };
}

describe('dotenv parsing', () => {
  it('reads plain, export-prefixed, quoted and commented values', () => {
    const content = 'A=1\nexport STEM_SIGNING_KEYS="k:YQ=="\n  STEM_SIGNING_ACTIVE_KEY = k   # the active one\n# STEM_SIGNING_KEYS=commented\n';
    const parsed = parseDotenv(content, FIELDS, 'app');
    expect(parsed.get('STEM_SIGNING_KEYS')?.value).toBe('k:YQ==');
    expect(parsed.get('STEM_SIGNING_ACTIVE_KEY')?.value).toBe('k');
    expect(parseDotenv("STEM_SIGNING_KEYS='a:b # c'\n", FIELDS, 'app').get('STEM_SIGNING_KEYS')?.value).toBe('a:b # c');
  });

  it('refuses a managed variable assigned twice and an unterminated quote', () => {
    expect(() => parseDotenv('STEM_SIGNING_KEYS=a\nSTEM_SIGNING_KEYS=b\n', FIELDS, 'app')).toThrow(TargetContentError);
    expect(() => parseDotenv('STEM_SIGNING_KEYS="a\n', FIELDS, 'app')).toThrow(/unterminated/);
  });

  it('ignores duplicates of variables it does not manage', () => {
    expect(parseDotenv('A=1\nA=2\nSTEM_SIGNING_KEYS=x\n', FIELDS, 'app').size).toBe(1);
  });
});

describe('dotenv rendering preserves everything else', () => {
  it('replaces in place, keeps export prefixes, comments, blank lines and order', () => {
    const content = '# head\nA=1\n\nexport STEM_SIGNING_KEYS=old\nB="x y" # keep\nSTEM_SIGNING_ACTIVE_KEY=o\n# tail';
    expect(renderDotenv(content, { STEM_SIGNING_KEYS: 'new:YQ==', STEM_SIGNING_ACTIVE_KEY: 'new' }, 'app')).toBe(
      '# head\nA=1\n\nexport STEM_SIGNING_KEYS=new:YQ==\nB="x y" # keep\nSTEM_SIGNING_ACTIVE_KEY=new\n# tail',
    );
  });

  it('appends missing variables, keeping CRLF files CRLF', () => {
    expect(renderDotenv('A=1\r\n', { STEM_SIGNING_ACTIVE_KEY: 'k' }, 'app')).toBe('A=1\r\nSTEM_SIGNING_ACTIVE_KEY=k\r\n');
    expect(renderDotenv('A=1', { STEM_SIGNING_ACTIVE_KEY: 'k' }, 'app')).toBe('A=1\nSTEM_SIGNING_ACTIVE_KEY=k\n');
    expect(renderDotenv('', { STEM_SIGNING_ACTIVE_KEY: 'k' }, 'app')).toBe('STEM_SIGNING_ACTIVE_KEY=k\n');
  });
});

describe('dotenv provider', () => {
  it('reads with a content version, writes atomically with mode 0600', async () => {
    const { path, provider } = fixture('A=1\nSTEM_SIGNING_KEYS=k:YQ==\n');
    const snapshot = await provider.read(FIELDS);
    expect(snapshot.fields).toEqual({ STEM_SIGNING_KEYS: 'k:YQ==' });
    const { version } = await provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(version).not.toBe(snapshot.version);
    expect(readFileSync(path, 'utf8')).toBe('A=1\nSTEM_SIGNING_KEYS=k:YQ==\nSTEM_SIGNING_ACTIVE_KEY=k\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
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

  it('a held lock blocks writers; an abandoned one is broken', async () => {
    const { path, provider } = fixture('STEM_SIGNING_KEYS=k:YQ==\n');
    const snapshot = await provider.read(FIELDS);
    writeFileSync(`${path}.lock`, '');
    await expect(provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toThrow(/held by another writer/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    await provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(readFileSync(path, 'utf8')).toContain('STEM_SIGNING_ACTIVE_KEY=k');
  });

  it('a missing file is a clear error', async () => {
    const provider = createDotenvProvider({ target: 'gone', path: '/nonexistent/app.env' });
    await expect(provider.read(FIELDS)).rejects.toThrow('target "gone": cannot read /nonexistent/app.env: file not found');
  });

  it('refuses to write a value that would need quoting', async () => {
    const { provider } = fixture('');
    const snapshot = await provider.read(FIELDS);
    await expect(provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'a b' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toThrow(/needs quoting/);
  });
});

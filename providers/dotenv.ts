/**
 * `dotenv`: a `.env`-style file, the embedded default. Compare-and-set on the SHA-256 of the file
 * content under a lock file; atomic replace (temp file, fsync, rename, fsync dir), mode 0600.
 * Every other line — comments, blank lines, other variables, their order — is kept byte for byte.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, ConflictError, RotorError, TargetContentError } from '../src/errors.js';
import type { Provider, TargetSnapshot, WriteRequest } from './types.js';

export const PROVIDER_NAME = 'dotenv';

export interface DotenvOptions {
  /** The target's name, for messages. */
  readonly target: string;
  /** Absolute path of the file. */
  readonly path: string;
  /**
   * A lock file older than this is considered abandoned by a crashed writer and broken.
   * @default 30_000
   */
  readonly staleLockMs?: number;
}

const ASSIGNMENT = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.]*)(\s*=\s*)(.*)$/;

interface Assignment {
  readonly line: number;
  readonly prefix: string;
  readonly value: string;
}

function unquote(raw: string, describe: () => string): string {
  const text = raw.trimEnd();
  const quote = text[0];
  if (quote === '"' || quote === "'") {
    const end = text.indexOf(quote, 1);
    if (end === -1) throw new Error(`${describe()}: unterminated ${quote === '"' ? 'double' : 'single'} quote (multi-line values are not supported)`);
    const inner = text.slice(1, end);
    return quote === '"' ? inner.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1') : inner;
  }
  const comment = text.search(/\s#/);
  return (comment === -1 ? text : text.slice(0, comment)).trim();
}

/** Assignments of the requested names; a name assigned twice is conflicting content. */
export function parseDotenv(content: string, names: readonly string[], target: string): Map<string, Assignment> {
  const wanted = new Set(names);
  const found = new Map<string, Assignment>();
  content.split(/\r?\n/).forEach((text, index) => {
    const match = ASSIGNMENT.exec(text);
    if (!match || !wanted.has(match[2] as string)) return;
    const name = match[2] as string;
    const previous = found.get(name);
    if (previous) {
      throw new TargetContentError(target, `${name} is assigned twice (lines ${previous.line + 1} and ${index + 1}); loaders disagree on which wins`);
    }
    let value: string;
    try {
      value = unquote(match[4] as string, () => `line ${index + 1} (${name})`);
    } catch (error) {
      throw new TargetContentError(target, (error as Error).message);
    }
    found.set(name, { line: index, prefix: match[1] as string, value });
  });
  return found;
}

function contentVersion(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex').slice(0, 32)}`;
}

export function renderDotenv(content: string, set: Readonly<Record<string, string>>, target: string): string {
  const newline = content.includes('\r\n') ? '\r\n' : '\n';
  const lines = content.split(/\r?\n/);
  const assignments = parseDotenv(content, Object.keys(set), target);
  const appended: string[] = [];
  for (const [name, value] of Object.entries(set)) {
    if (/[\s"'#\\]/.test(value)) throw new RotorError(`target "${target}": refusing to write ${name}: value needs quoting`);
    const existing = assignments.get(name);
    if (existing) lines[existing.line] = `${existing.prefix}${name}=${value}`;
    else appended.push(`${name}=${value}`);
  }
  if (appended.length === 0) return lines.join(newline);
  const endsWithNewline = content === '' || content.endsWith('\n');
  const body = endsWithNewline ? lines.slice(0, -1) : lines;
  return [...body, ...appended].join(newline) + newline;
}

export class DotenvProvider implements Provider {
  readonly providerName = PROVIDER_NAME;
  readonly location: string;
  private readonly options: DotenvOptions;

  constructor(options: DotenvOptions) {
    this.options = options;
    this.location = options.path;
  }

  private readContent(): Buffer {
    try {
      return readFileSync(this.options.path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const message = `target "${this.options.target}": cannot read ${this.options.path}: ${code === 'ENOENT' ? 'file not found' : code}`;
      throw code === 'ENOENT' ? new ConfigError(message) : new RotorError(message);
    }
  }

  async read(fields: readonly string[]): Promise<TargetSnapshot> {
    const content = this.readContent();
    const assignments = parseDotenv(content.toString('utf8'), fields, this.options.target);
    const values: Record<string, string> = {};
    for (const [name, assignment] of assignments) values[name] = assignment.value;
    return { fields: values, version: contentVersion(content) };
  }

  async write(request: WriteRequest): Promise<{ version: string }> {
    const release = this.lock();
    try {
      const current = this.readContent();
      if (contentVersion(current) !== request.expectedVersion) {
        throw new ConflictError(`target "${this.options.target}": ${this.options.path} changed since it was read`);
      }
      const next = Buffer.from(renderDotenv(current.toString('utf8'), request.set, this.options.target), 'utf8');
      this.replaceAtomically(next);
      return { version: contentVersion(next) };
    } finally {
      release();
    }
  }

  private replaceAtomically(content: Buffer): void {
    const { path } = this.options;
    const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    const directory = openSync(dirname(path), 'r');
    try {
      fsyncSync(directory);
    } finally {
      closeSync(directory);
    }
  }

  /** An exclusive lock file beside the target; a crashed writer's lock expires. */
  private lock(): () => void {
    const lockPath = `${this.options.path}.lock`;
    const staleMs = this.options.staleLockMs ?? 30_000;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        closeSync(openSync(lockPath, 'wx', 0o600));
        return () => unlinkSync(lockPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = statSync(lockPath, { throwIfNoEntry: false });
        if (holder && Date.now() - holder.mtimeMs <= staleMs) break;
        if (holder) unlinkSync(lockPath);
      }
    }
    throw new ConflictError(`target "${this.options.target}": ${lockPath} is held by another writer`);
  }
}

export default function createDotenvProvider(options: DotenvOptions): Provider {
  return new DotenvProvider(options);
}

/**
 * `dotenv`: an env file, the embedded default. The file is worked on as bytes: only the value spans
 * of the STEM_SIGNING_* lines change (src/envfile/codec.ts), read and written as the target's
 * declared reader (`dialect`) sees them. Links are followed: the resolved file is replaced
 * atomically in its own directory with its owner, group and mode kept, under a lock file beside it
 * that names its holder. Compare-and-set on the SHA-256 of the file content.
 */
import { createHash } from 'node:crypto';
import type { Dialect } from '../src/envfile/codec.js';
import { decodeEnvFile, dialectFindings, encodeEnvFile, parseEnvFile, renderEnvFile } from '../src/envfile/codec.js';
import { ConflictError, TargetContentError } from '../src/errors.js';
import { acquireLockFile } from '../src/files/lock.js';
import { assertReplaceable, readRegularFile, resolvePath, writeFileAtomically } from '../src/files/regular.js';
import { findResidue, removeResidue } from '../src/files/temp.js';
import type { Provider, ProviderNotice, TargetSnapshot, WriteRequest } from './types.js';

export const PROVIDER_NAME = 'dotenv';

export interface DotenvOptions {
  /** The target's name, for messages. */
  readonly target: string;
  /** Absolute path of the file (may be a link). */
  readonly path: string;
  /** @default 'dotenv' */
  readonly dialect?: Dialect;
  /**
   * A lock file whose holder cannot be proven gone (another host) is honoured this long.
   * @default 30_000
   */
  readonly staleLockMs?: number;
  readonly notice?: ProviderNotice;
}

function contentVersion(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex').slice(0, 32)}`;
}

export class DotenvProvider implements Provider {
  readonly providerName = PROVIDER_NAME;
  private readonly options: DotenvOptions;
  private readonly dialect: Dialect;

  constructor(options: DotenvOptions) {
    this.options = options;
    this.dialect = options.dialect ?? 'dotenv';
  }

  /** The path, and where it leads when it is a link (status and check show both). */
  get location(): string {
    const resolved = resolvePath(this.options.path);
    return resolved === this.options.path ? this.options.path : `${this.options.path} -> ${resolved}`;
  }

  private get what(): string {
    return `target "${this.options.target}"`;
  }

  private parse(content: Buffer, fields: readonly string[]) {
    const assignments = parseEnvFile(decodeEnvFile(content), fields, this.dialect, this.options.target);
    const [finding] = dialectFindings(assignments, this.dialect);
    if (finding) {
      throw new TargetContentError(this.options.target, `${this.options.path} line ${finding.line} (${finding.variable}): ${finding.message}; fix the line or declare the target's dialect`);
    }
    return assignments;
  }

  async read(fields: readonly string[]): Promise<TargetSnapshot> {
    const { content } = readRegularFile(this.options.path, this.what);
    const values: Record<string, string> = {};
    for (const [name, assignment] of this.parse(content, fields)) values[name] = assignment.value;
    return { fields: values, version: contentVersion(content) };
  }

  async preflightWrite(): Promise<void> {
    const resolved = resolvePath(this.options.path);
    const { stat } = readRegularFile(resolved, this.what);
    assertReplaceable(resolved, stat, this.what);
  }

  async write(request: WriteRequest): Promise<{ version: string }> {
    const resolved = resolvePath(this.options.path);
    const release = acquireLockFile(`${resolved}.lock`, {
      staleMs: this.options.staleLockMs ?? 30_000,
      held: (message) => new ConflictError(`${this.what}: ${message}`),
      onBroken: (broken) => this.options.notice?.('break-lock', { target: this.options.target, lock: broken.path, holder: broken.holder, why: broken.why }),
    });
    try {
      const { content, stat } = readRegularFile(resolved, this.what);
      if (contentVersion(content) !== request.expectedVersion) throw new ConflictError(`${this.what}: ${this.options.path} changed since it was read`);
      assertReplaceable(resolved, stat, this.what);
      this.parse(content, Object.keys(request.set));
      const next = encodeEnvFile(renderEnvFile(decodeEnvFile(content), request.set, this.dialect, this.options.target));
      writeFileAtomically(resolved, next, stat);
      return { version: contentVersion(next) };
    } finally {
      release();
    }
  }

  async residue(): Promise<readonly string[]> {
    return findResidue(resolvePath(this.options.path)).map((residue) => residue.path);
  }

  async removeResidue(): Promise<readonly string[]> {
    return removeResidue(resolvePath(this.options.path));
  }
}

export default function createDotenvProvider(options: DotenvOptions): Provider {
  return new DotenvProvider(options);
}

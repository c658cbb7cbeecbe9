/**
 * `file` store, the embedded default: `<dir>/rings/<ring>.json` (atomic rename, 0600, validated on
 * every load), a lease file `<ring>.lease` with owner, expiry and fencing counter, and
 * `<dir>/audit.jsonl` (append-only hash chain). Lease changes and fenced saves happen under a
 * short-lived lock file that names its holder; appends under another.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, fstatSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { parseStoredState } from '../core/state-schema.js';
import type { RingState } from '../core/types.js';
import { LeaseHeldError, RotorError, asIoError } from '../errors.js';
import { acquireLockFile, type BrokenLock } from '../files/lock.js';
import { currentProcess, processState, type ProcessIdentity } from '../files/process.js';
import { writeFileAtomically } from '../files/regular.js';
import { findResidue, removeResidue } from '../files/temp.js';
import { chainedText, readRecords, verifyRecords, type AuditRead, type AuditVerification, type StoredRecord } from './audit-chain.js';
import type { AcquireOptions, AuditEvent, Lease, StateStore } from './types.js';

export const STORE_TYPE = 'file';

export interface FileStoreOptions {
  readonly dir: string;
  readonly clock: Clock;
  /**
   * A lock file whose holder cannot be proven gone is honoured this long.
   * @default 10_000
   */
  readonly staleMutexMs?: number;
}

interface LeaseFile {
  owner: string;
  token: string;
  fence: number;
  expiresAt: string;
  /** The holding process: a lease whose holder is gone from this host is taken over at once. */
  holder?: ProcessIdentity;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw asIoError(error, 'read', path);
  }
}

function readLease(path: string): LeaseFile | null {
  const text = readText(path);
  if (text === null) return null;
  try {
    const lease = JSON.parse(text) as LeaseFile;
    if (typeof lease.token === 'string' && typeof lease.fence === 'number' && typeof lease.expiresAt === 'string') return lease;
  } catch {
    // fall through
  }
  throw new RotorError(`lease file ${path} is corrupt; no other orchestrator may be running for this ring before you remove it`);
}

/** The text after the last complete line ending, and the last complete line (null when none). */
function tail(path: string): { lastLine: string | null; endsWithNewline: boolean } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lastLine: null, endsWithNewline: true };
    throw asIoError(error, 'read', path);
  }
  try {
    const size = fstatSync(fd).size;
    for (let chunk = 64 * 1024; ; chunk *= 4) {
      const start = Math.max(0, size - chunk);
      const buffer = Buffer.alloc(size - start);
      readSync(fd, buffer, 0, buffer.length, start);
      const text = buffer.toString('utf8');
      const body = text.endsWith('\n') ? text.slice(0, -1) : text;
      const newline = body.lastIndexOf('\n');
      if (newline !== -1 || start === 0) return { lastLine: size === 0 ? null : body.slice(newline + 1), endsWithNewline: size === 0 || text.endsWith('\n') };
    }
  } finally {
    closeSync(fd);
  }
}

export class FileStore implements StateStore {
  private readonly ringsDir: string;
  private readonly auditPath: string;
  private readonly options: FileStoreOptions;

  constructor(options: FileStoreOptions) {
    this.options = options;
    this.ringsDir = join(options.dir, 'rings');
    this.auditPath = join(options.dir, 'audit.jsonl');
  }

  private ensureDir(): void {
    try {
      mkdirSync(this.ringsDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw asIoError(error, 'create state directory', this.ringsDir);
    }
  }

  private statePath(ring: string): string {
    return join(this.ringsDir, `${ring}.json`);
  }

  private leasePath(ring: string): string {
    return join(this.ringsDir, `${ring}.lease`);
  }

  private withLock<T>(path: string, ring: string, held: (message: string) => Error, action: () => T): T {
    this.ensureDir();
    const broken: BrokenLock[] = [];
    const release = acquireLockFile(path, { staleMs: this.options.staleMutexMs ?? 10_000, waitMs: 2_000, held, onBroken: (lock) => broken.push(lock) });
    try {
      for (const lock of broken) this.appendLocked({ time: this.options.clock.now().toISOString(), ring, actor: { user: 'stem-rotor', host: hostname() }, action: 'break-lock', outcome: 'ok', details: { lock: lock.path, holder: lock.holder, why: lock.why } }, path === this.auditLockPath);
      return action();
    } finally {
      release();
    }
  }

  private get auditLockPath(): string {
    return `${this.auditPath}.lock`;
  }

  private withMutex<T>(ring: string, action: () => T): T {
    return this.withLock(`${this.leasePath(ring)}.mutex`, ring, (message) => new LeaseHeldError(`ring "${ring}": the store mutex ${message}`), action);
  }

  async load(ring: string): Promise<RingState | null> {
    const path = this.statePath(ring);
    const text = readText(path);
    return text === null ? null : parseStoredState(text, path, ring);
  }

  async save(state: RingState, lease: Lease): Promise<void> {
    this.withMutex(state.ring, () => {
      const current = readLease(this.leasePath(state.ring));
      if (!current || current.token !== lease.token || current.fence !== lease.fence) {
        throw new LeaseHeldError(`ring "${state.ring}": lease lost (fence ${lease.fence}); another orchestrator took over — nothing more was saved`);
      }
      writeFileAtomically(this.statePath(state.ring), `${JSON.stringify(state, null, 2)}\n`);
      const expiresAt = new Date(this.options.clock.now().getTime() + lease.ttlMs).toISOString();
      writeFileAtomically(this.leasePath(state.ring), `${JSON.stringify({ ...current, expiresAt })}\n`);
    });
  }

  async acquire(ring: string, options: AcquireOptions): Promise<Lease> {
    return this.withMutex(ring, () => {
      const now = this.options.clock.now();
      const current = readLease(this.leasePath(ring));
      const held = current !== null && current.token !== options.token && Date.parse(current.expiresAt) > now.getTime();
      const holderGone = held && current.holder !== undefined && processState(current.holder) === 'gone';
      if (held && !options.preempt && !holderGone) {
        throw new LeaseHeldError(`ring "${ring}" is locked by ${current.owner} until ${current.expiresAt}`);
      }
      if (holderGone) {
        this.appendLocked({ time: now.toISOString(), ring, actor: { user: 'stem-rotor', host: hostname() }, action: 'break-lease', outcome: 'ok', details: { owner: current.owner, holder: current.holder, why: 'holder process is gone' } }, false);
      }
      const lease: Lease = {
        ring,
        owner: options.owner,
        token: options.token,
        fence: (current?.fence ?? 0) + 1,
        expiresAt: new Date(now.getTime() + options.ttlMs).toISOString(),
        ttlMs: options.ttlMs,
      };
      writeFileAtomically(this.leasePath(ring), `${JSON.stringify({ owner: lease.owner, token: lease.token, fence: lease.fence, expiresAt: lease.expiresAt, holder: currentProcess() })}\n`);
      // Holding the lease: what crashed writers of this ring's files left can go.
      for (const path of this.residuePaths(ring)) removeResidue(path);
      return lease;
    });
  }

  async release(lease: Lease): Promise<void> {
    this.withMutex(lease.ring, () => {
      const current = readLease(this.leasePath(lease.ring));
      if (!current || current.token !== lease.token) return;
      // Keep the fencing counter; only give up the time.
      writeFileAtomically(this.leasePath(lease.ring), `${JSON.stringify({ ...current, expiresAt: new Date(0).toISOString() })}\n`);
    });
  }

  /** Appends one chained record; a torn last line is ended first so the new record stands on its own line. */
  private appendLocked(event: AuditEvent, alreadyLocked: boolean): void {
    const append = () => {
      const { lastLine, endsWithNewline } = tail(this.auditPath);
      const text = `${endsWithNewline ? '' : '\n'}${chainedText(event, lastLine)}\n`;
      try {
        const fd = openSync(this.auditPath, 'a', 0o600);
        try {
          writeFileSync(fd, text);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        throw asIoError(error, 'append to', this.auditPath);
      }
    };
    if (alreadyLocked) append();
    else this.withLock(this.auditLockPath, '-', (message) => new LeaseHeldError(`the audit trail ${message}`), append);
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    this.appendLocked(event, false);
  }

  private records(): StoredRecord[] {
    const text = readText(this.auditPath) ?? '';
    return text
      .split('\n')
      .map((line, index) => ({ at: `${this.auditPath} line ${index + 1}`, text: line }))
      .filter((record) => record.text.trim() !== '');
  }

  async readAudit(ring?: string): Promise<AuditRead> {
    return readRecords(this.records(), ring);
  }

  async verifyAudit(): Promise<AuditVerification> {
    return verifyRecords(this.records());
  }

  /** The files whose writers' temp files this ring's lease holder cleans up. */
  private residuePaths(ring: string): string[] {
    return [this.statePath(ring), this.leasePath(ring), this.auditPath];
  }

  async residue(ring: string): Promise<readonly string[]> {
    return this.residuePaths(ring).flatMap((path) => findResidue(path).map((residue) => residue.path));
  }

  async close(): Promise<void> {
    // nothing held open between calls
  }
}

export function createFileStore(options: FileStoreOptions): StateStore {
  return new FileStore(options);
}

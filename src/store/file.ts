/**
 * `file` store, the embedded default: `<dir>/rings/<ring>.json` (atomic rename, 0600), a lease file
 * `<ring>.lease` with owner, expiry and fencing counter, and `<dir>/audit.jsonl` (append-only).
 * Lease changes and fenced saves happen under a short-lived exclusive mutex file.
 */
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { RingState } from '../core/types.js';
import { LeaseHeldError, RotorError } from '../errors.js';
import type { AcquireOptions, AuditEvent, Lease, StateStore } from './types.js';

export const STORE_TYPE = 'file';

export interface FileStoreOptions {
  readonly dir: string;
  readonly clock: Clock;
  /**
   * A mutex file older than this was left by a crashed process and is broken.
   * @default 10_000
   */
  readonly staleMutexMs?: number;
}

interface LeaseFile {
  owner: string;
  token: string;
  fence: number;
  expiresAt: string;
}

function writeAtomically(path: string, content: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

function readJson<T>(path: string): T | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new RotorError(`state file ${path} is corrupt (not JSON); restore it from a backup or the audit trail`);
  }
}

export class FileStore implements StateStore {
  private readonly ringsDir: string;
  private readonly options: FileStoreOptions;

  constructor(options: FileStoreOptions) {
    this.options = options;
    this.ringsDir = join(options.dir, 'rings');
  }

  private ensureDir(): void {
    mkdirSync(this.ringsDir, { recursive: true, mode: 0o700 });
  }

  private statePath(ring: string): string {
    return join(this.ringsDir, `${ring}.json`);
  }

  private leasePath(ring: string): string {
    return join(this.ringsDir, `${ring}.lease`);
  }

  private withMutex<T>(ring: string, action: () => T): T {
    this.ensureDir();
    const mutex = `${this.leasePath(ring)}.mutex`;
    const staleMs = this.options.staleMutexMs ?? 10_000;
    for (let attempt = 0; ; attempt += 1) {
      try {
        closeSync(openSync(mutex, 'wx', 0o600));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = statSync(mutex, { throwIfNoEntry: false });
        if (holder && Date.now() - holder.mtimeMs > staleMs) unlinkSync(mutex);
        else if (attempt > 200) throw new LeaseHeldError(`ring "${ring}": the store mutex ${mutex} stays held`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
    try {
      return action();
    } finally {
      unlinkSync(mutex);
    }
  }

  async load(ring: string): Promise<RingState | null> {
    return readJson<RingState>(this.statePath(ring));
  }

  async save(state: RingState, lease: Lease): Promise<void> {
    this.withMutex(state.ring, () => {
      const current = readJson<LeaseFile>(this.leasePath(state.ring));
      if (!current || current.token !== lease.token || current.fence !== lease.fence) {
        throw new LeaseHeldError(`ring "${state.ring}": lease lost (fence ${lease.fence}); another orchestrator took over — nothing more was saved`);
      }
      writeAtomically(this.statePath(state.ring), `${JSON.stringify(state, null, 2)}\n`);
      const expiresAt = new Date(this.options.clock.now().getTime() + lease.ttlMs).toISOString();
      writeAtomically(this.leasePath(state.ring), `${JSON.stringify({ ...current, expiresAt })}\n`);
    });
  }

  async acquire(ring: string, options: AcquireOptions): Promise<Lease> {
    return this.withMutex(ring, () => {
      const now = this.options.clock.now();
      const current = readJson<LeaseFile>(this.leasePath(ring));
      const held = current !== null && current.token !== options.token && Date.parse(current.expiresAt) > now.getTime();
      if (held && !options.preempt) {
        throw new LeaseHeldError(`ring "${ring}" is locked by ${current.owner} until ${current.expiresAt}`);
      }
      const lease: Lease = {
        ring,
        owner: options.owner,
        token: options.token,
        fence: (current?.fence ?? 0) + 1,
        expiresAt: new Date(now.getTime() + options.ttlMs).toISOString(),
        ttlMs: options.ttlMs,
      };
      writeAtomically(this.leasePath(ring), `${JSON.stringify({ owner: lease.owner, token: lease.token, fence: lease.fence, expiresAt: lease.expiresAt })}\n`);
      return lease;
    });
  }

  async release(lease: Lease): Promise<void> {
    this.withMutex(lease.ring, () => {
      const current = readJson<LeaseFile>(this.leasePath(lease.ring));
      if (!current || current.token !== lease.token) return;
      // Keep the fencing counter; only give up the time.
      writeAtomically(this.leasePath(lease.ring), `${JSON.stringify({ ...current, expiresAt: new Date(0).toISOString() })}\n`);
    });
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    this.ensureDir();
    appendFileSync(join(this.options.dir, 'audit.jsonl'), `${JSON.stringify(event)}\n`, { mode: 0o600 });
  }

  async readAudit(ring?: string): Promise<AuditEvent[]> {
    let text: string;
    try {
      text = readFileSync(join(this.options.dir, 'audit.jsonl'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const events = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as AuditEvent);
    return ring === undefined ? events : events.filter((event) => event.ring === ring);
  }

  async close(): Promise<void> {
    // nothing held open between calls
  }
}

export function createFileStore(options: FileStoreOptions): StateStore {
  return new FileStore(options);
}

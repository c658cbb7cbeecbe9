/**
 * Lock files that say who holds them. The holder (pid, host, process start, time, token) is written
 * to a temp file and linked into place, so a lock file is never seen empty or half written. A lock
 * whose process is gone from this host is broken at once; any other lock is honoured until it is
 * `staleMs` old. Breaking renames the lock aside and checks it moved the inode it judged, so two
 * breakers never remove a lock that a third process just took.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { asIoError } from '../errors.js';
import { currentProcess, processState, type ProcessIdentity } from './process.js';
import { tempPathFor } from './temp.js';

export interface LockHolder extends Partial<ProcessIdentity> {
  readonly token?: string;
}

export interface BrokenLock {
  readonly path: string;
  readonly holder: LockHolder;
  readonly why: 'holder process is gone' | 'expired';
}

export interface LockOptions {
  /** Honour a holder we cannot prove dead this long after it took the lock. */
  readonly staleMs: number;
  /** Wait this long for a live holder before giving up. @default 0 */
  readonly waitMs?: number;
  /** The error for a lock that stays held; given a message naming holder and expiry. */
  readonly held: (message: string) => Error;
  readonly onBroken?: (broken: BrokenLock) => void;
}

function readHolder(path: string): { holder: LockHolder; stat: Stats } | null {
  try {
    const stat = statSync(path);
    let holder: LockHolder = {};
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    } catch {
      // an old-format (empty) lock file: only its age tells
    }
    return { holder: typeof holder === 'object' && holder !== null ? holder : {}, stat };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw asIoError(error, 'read lock file', path);
  }
}

function createLock(path: string, holder: LockHolder): boolean {
  const temporary = tempPathFor(path);
  const content = `${JSON.stringify(holder)}\n`;
  try {
    writeFileSync(temporary, content, { mode: 0o600, flag: 'wx' });
    linkSync(temporary, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw asIoError(error, 'create lock file', path);
  } finally {
    // written or not (ENOSPC leaves it empty), the temp file never stays
    try {
      unlinkSync(temporary);
    } catch {
      // never created
    }
  }
  // no hard links on this file system: exclusive create, then write
  try {
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw asIoError(error, 'create lock file', path);
  }
}

/** Moves the lock aside only if it is still the inode we judged; puts back a lock we did not mean to take. */
function breakLock(path: string, judged: Stats): boolean {
  const aside = tempPathFor(path);
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw asIoError(error, 'break lock file', path);
  }
  const moved = statSync(aside);
  if (moved.ino !== judged.ino || moved.dev !== judged.dev) {
    try {
      linkSync(aside, path);
    } catch {
      // someone took the lock meanwhile; theirs stands
    }
    unlinkSync(aside);
    return false;
  }
  unlinkSync(aside);
  return true;
}

function describeHolder(path: string, holder: LockHolder, stat: Stats, staleMs: number): string {
  const who = holder.pid !== undefined ? `pid ${holder.pid} on ${holder.host ?? 'an unknown host'}` : 'an unknown process';
  const since = holder.startedAt ?? stat.mtime.toISOString();
  return `${path} is held by ${who} since ${since}; it expires at ${new Date(stat.mtimeMs + staleMs).toISOString()} unless that process ends first`;
}

/** Takes the lock; returns its release. */
export function acquireLockFile(path: string, options: LockOptions): () => void {
  const token = randomBytes(8).toString('hex');
  const holder: LockHolder = { ...currentProcess(), startedAt: new Date().toISOString(), token };
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    if (createLock(path, holder)) {
      return () => {
        const current = readHolder(path);
        if (current?.holder.token === token) unlinkSync(path);
      };
    }
    const current = readHolder(path);
    if (!current) continue;
    const gone = current.holder.pid !== undefined && current.holder.host !== undefined && processState(current.holder as ProcessIdentity) === 'gone';
    const expired = Date.now() - current.stat.mtimeMs > options.staleMs;
    if (gone || expired) {
      if (breakLock(path, current.stat)) options.onBroken?.({ path, holder: current.holder, why: gone ? 'holder process is gone' : 'expired' });
      continue;
    }
    if (Date.now() >= deadline) throw options.held(describeHolder(path, current.holder, current.stat, options.staleMs));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
}

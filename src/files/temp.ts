/**
 * Temp files beside the file they become: `.<name>.stem-rotor-<pid>-<random>.tmp`, created
 * exclusively with mode 0600. The pid in the name tells whether the writer is still running, so the
 * next command that holds the ring's lease can remove what a crashed writer left (it may hold keys).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { asIoError } from '../errors.js';
import { processState } from './process.js';
import { hostname } from 'node:os';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.stem-rotor-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A writer that has not touched its temp file for this long is gone, whatever its pid says. */
const ABANDONED_MS = 10 * 60_000;

export interface Residue {
  readonly path: string;
  readonly pid: number;
  /** The writer is gone (or the file is long abandoned): safe to remove. */
  readonly abandoned: boolean;
}

/**
 * Temp files that writers of `path` (and of its `.lock`/`.mutex` lock file) left: ours, plus the
 * `.<name>.<pid>.tmp` / `<name>.<pid>.tmp` names that stem-rotor 0.1 used.
 */
export function findResidue(path: string): Residue[] {
  const name = escapeRegExp(basename(path));
  const pattern = new RegExp(`^(?:\\.${name}(?:\\.lock|\\.mutex)?\\.stem-rotor-(\\d+)-[0-9a-f]+|\\.?${name}\\.(\\d+))\\.tmp$`);
  let entries: string[];
  try {
    entries = readdirSync(dirname(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw asIoError(error, 'list directory', dirname(path));
  }
  return entries.flatMap((entry) => {
    const match = pattern.exec(entry);
    if (!match) return [];
    const file = join(dirname(path), entry);
    const pid = Number(match[1] ?? match[2]);
    const stat = statSync(file, { throwIfNoEntry: false });
    if (!stat) return [];
    const abandoned = pid === process.pid ? false : processState({ pid, host: hostname() }) === 'gone' || Date.now() - stat.mtimeMs > ABANDONED_MS;
    return [{ path: file, pid, abandoned }];
  });
}

/** Removes the abandoned residue of `path`; returns what it removed. */
export function removeResidue(path: string): string[] {
  return findResidue(path)
    .filter((residue) => residue.abandoned)
    .flatMap((residue) => {
      try {
        unlinkSync(residue.path);
        return [residue.path];
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw asIoError(error, 'remove temp file', residue.path);
      }
    });
}

/**
 * Reading and replacing the files that real deployments have: reached through symlinks (written at
 * the resolved file, the link kept), owned by a service user (owner, group and mode kept), possibly
 * read-only or on a read-only mount (refused before anything is written), possibly not a regular
 * file at all (a FIFO must never hang a command).
 */
import { accessSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, fsyncSync, lstatSync, openSync, readFileSync, readlinkSync, realpathSync, renameSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, RotorError, asIoError } from '../errors.js';
import { tempPathFor } from './temp.js';

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** The file a path finally names, following every link; the path itself when nothing is there yet. */
export function resolvePath(path: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return path;
    throw asIoError(error, 'resolve', path);
  }
}

export interface RegularFile {
  readonly content: Buffer;
  readonly stat: Stats;
}

/**
 * Reads a regular file (through links). Opened non-blocking and checked with fstat before reading,
 * so a FIFO or device is refused at once (exit 2) instead of blocking.
 */
export function readRegularFile(path: string, what: string): RegularFile {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      const link = lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(path) : null;
      throw new ConfigError(link === null ? `${what}: ${path}: file not found` : `${what}: ${path} is a link to ${link}, which does not exist`);
    }
    throw asIoError(error, 'read', path);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError(`${what}: ${path} is ${kindOf(stat)}, not a regular file; point the target at the env file itself`);
    return { content: readFileSync(fd), stat };
  } catch (error) {
    throw asIoError(error, 'read', path);
  } finally {
    closeSync(fd);
  }
}

const ROOT = 0;

/**
 * Refuses (before anything is written anywhere) a replacement that would fail or change the file's
 * meaning: read-only file, unwritable or read-only directory, an owner this process cannot keep.
 */
export function assertReplaceable(resolved: string, stat: Stats, what: string): void {
  const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
  if ((stat.mode & 0o222) === 0) {
    throw new RotorError(`${what}: ${resolved} is read-only (mode ${mode}); stem-rotor does not replace read-only files. If it should be rotated, make it writable (chmod u+w ${resolved}) and re-run`);
  }
  const uid = process.geteuid?.() ?? ROOT;
  const gid = process.getegid?.() ?? ROOT;
  if (uid !== ROOT) {
    const groups = process.getgroups?.() ?? [];
    if (stat.uid !== uid || (stat.gid !== gid && !groups.includes(stat.gid))) {
      throw new RotorError(
        `${what}: ${resolved} is owned by uid ${stat.uid} gid ${stat.gid}; stem-rotor runs as uid ${uid} and could not give the rewritten file that owner and group, so it writes nothing. Run it as that user or as root`,
      );
    }
    try {
      accessSync(resolved, constants.W_OK);
    } catch (error) {
      throw asIoError(error, 'write', resolved);
    }
  }
  const directory = dirname(resolved);
  try {
    accessSync(directory, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'EROFS'
        ? 'the file is on a read-only mount (a Kubernetes Secret or ConfigMap volume?); rotate its source instead (e.g. the kubernetes-secret provider)'
        : 'stem-rotor writes a temp file beside the target and renames it into place';
    throw asIoError(error, 'create files in', directory, { hint });
  }
}

/**
 * Atomic write: an exclusive 0600 temp file beside `path`, given `keep`'s owner, group and mode (a
 * replaced file keeps them; a new file stays 0600), fsync, rename, fsync of the directory. A failed
 * write leaves no temp file behind.
 */
export function writeFileAtomically(path: string, content: Buffer | string, keep?: Stats): void {
  const temporary = tempPathFor(path);
  let fd: number;
  try {
    fd = openSync(temporary, 'wx', 0o600);
  } catch (error) {
    throw asIoError(error, 'create temp file', temporary);
  }
  try {
    if (keep) {
      if (keep.uid !== process.geteuid?.() || keep.gid !== process.getegid?.()) fchownSync(fd, keep.uid, keep.gid);
      fchmodSync(fd, keep.mode & 0o7777);
    }
    writeFileSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporary, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    unlinkSync(temporary);
    throw asIoError(error, 'write', path);
  }
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}

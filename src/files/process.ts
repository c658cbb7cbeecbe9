/**
 * Who holds a lock or wrote a temp file, and whether that process is still there. A pid alone can
 * be reused after a crash, so on Linux the holder also records the process's start time
 * (/proc/<pid>/stat field 22) and a pid whose start time differs is a different, newer process.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessIdentity {
  readonly pid: number;
  readonly host: string;
  /** Clock ticks since boot when the process started; absent where /proc is not readable. */
  readonly procStart?: string;
  readonly startedAt: string;
}

/** Fields 3 (state) and 22 (start time) of /proc/<pid>/stat; undefined where /proc cannot tell. */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] as string, start: fields[19] as string };
  } catch {
    return undefined;
  }
}

function procStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

let self: ProcessIdentity | undefined;

export function currentProcess(): ProcessIdentity {
  if (!self) {
    const start = procStart(process.pid);
    self = { pid: process.pid, host: hostname(), ...(start ? { procStart: start } : {}), startedAt: new Date().toISOString() };
  }
  return self;
}

/**
 * `gone` only when the process certainly no longer exists: same host, and no such pid, or a pid
 * that now belongs to a process started at another time. Another host's process is `unknown`.
 */
export function processState(holder: Pick<ProcessIdentity, 'pid' | 'host' | 'procStart'>): 'alive' | 'gone' | 'unknown' {
  if (holder.host !== hostname()) return 'unknown';
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return 'unknown';
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
  }
  const now = procStat(holder.pid);
  if (now && (now.state === 'Z' || now.state === 'X')) return 'gone'; // exited, not yet reaped by its parent
  if (holder.procStart !== undefined && now !== undefined && now.start !== holder.procStart) return 'gone';
  return 'alive';
}

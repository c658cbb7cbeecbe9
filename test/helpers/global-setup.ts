/**
 * Before any test: the external programs the suite runs must be there, or it stops at once naming
 * what is missing and how to install it. Then one temp root per run: every temp dir the suite makes
 * (tests, redis-server, prometheus) lives under it through TMPDIR, and it is removed at the end, so
 * the suite leaves nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** program → the Debian package that provides it */
const PROGRAMS: Readonly<Record<string, string>> = {
  'redis-server': 'redis-server',
  prometheus: 'prometheus',
  promtool: 'prometheus', // the shipped alert rules are checked and unit-tested
  openssl: 'openssl',
  setpriv: 'util-linux', // permission cases run the CLI as an unprivileged uid
  mkfifo: 'coreutils',
  mount: 'mount', // read-only and full-disk mounts in the field tests
};

function missingPrograms(): string[] {
  return Object.keys(PROGRAMS).filter((program) => spawnSync('sh', ['-c', `command -v ${program}`]).status !== 0);
}

/** The SQL tests create their own databases on the machine's PostgreSQL (trust auth for postgres on 127.0.0.1). */
async function postgresProblem(): Promise<string | null> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return (error as Error).message || String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default async function setup(): Promise<() => void> {
  const missing = missingPrograms();
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((program) => PROGRAMS[program]))].join(' ');
    throw new Error(`the test suite needs ${missing.join(', ')}; install with: apt-get install -y ${packages} (or run bash .ci/run, which installs them)`);
  }
  const postgres = await postgresProblem();
  if (postgres !== null) {
    throw new Error(`the test suite needs PostgreSQL on 127.0.0.1:5432 accepting user postgres without a password (trust), and could not use it: ${postgres}; start it with: pg_ctlcluster $(ls /etc/postgresql) main start (or run bash .ci/run, which installs, configures and starts it)`);
  }
  const root = mkdtempSync(join(tmpdir(), 'stem-rotor-suite-'));
  chmodSync(root, 0o755); // permission tests run the CLI as an unprivileged uid below it
  process.env.TMPDIR = root;
  return () => {
    const leftovers = processesUnder(root);
    for (const { pid } of leftovers) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
    if (leftovers.length > 0) throw new Error(`the suite left processes running (now killed): ${leftovers.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
  };
}

/** Processes whose working directory is under `root`: every redis-server and prometheus the suite starts runs in its temp dir. */
function processesUnder(root: string): { pid: number; command: string }[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const cwd = readlinkSync(`/proc/${entry}/cwd`);
        if (!cwd.startsWith(`${root}/`)) return [];
        return [{ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim() }];
      } catch {
        return []; // gone, or not ours to read
      }
    });
}

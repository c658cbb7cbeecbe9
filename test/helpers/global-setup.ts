/**
 * One temp root per test run: every temp dir the suite makes (tests, redis-server, prometheus)
 * lives under it through TMPDIR, and it is removed at the end, so the suite leaves nothing behind.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'stem-rotor-suite-'));
  chmodSync(root, 0o755); // permission tests run the CLI as an unprivileged uid below it
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}

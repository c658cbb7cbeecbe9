import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDir(prefix = 'stem-rotor-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Every file under a directory with its bytes, for byte-identical before/after comparisons. */
export function snapshotTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (current: string) => {
    for (const entry of readdirSync(current)) {
      const path = join(current, entry);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(path.slice(dir.length + 1), readFileSync(path).toString('base64'));
    }
  };
  walk(dir);
  return files;
}

/**
 * Benchmarks (SPEC §8). Prints figures; asserts nothing. `--only NAME` runs one, `--json` prints one
 * JSON line per figure: {"name", "value", "unit"}.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly detail?: Record<string, number>;
}

const BIN = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));

function wallMs(args: readonly string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** `stem-rotor status demo` on the local example vs a bare `node -e ''`, interleaved in one run. */
function statusColdStart(): Figure[] {
  const dir = mkdtempSync(join(tmpdir(), 'stem-rotor-bench-'));
  try {
    wallMs([BIN, 'init', '--dir', dir]);
    const status = [BIN, 'status', 'demo', '--config', join(dir, 'stem-rotor.yaml')];
    for (let i = 0; i < 3; i += 1) wallMs(status); // warm the file cache
    const rotor: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      bare.push(wallMs(['-e', '']));
      rotor.push(wallMs(status));
    }
    const ratio = median(rotor) / median(bare);
    return [{ name: 'status-cold-start', value: Number(ratio.toFixed(3)), unit: "x node -e ''", detail: { statusMedianMs: Number(median(rotor).toFixed(1)), nodeMedianMs: Number(median(bare).toFixed(1)) } }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BENCHMARKS: Record<string, () => Figure[] | Promise<Figure[]>> = {
  'status-cold-start': statusColdStart,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? args[onlyIndex + 1] : undefined;
  if (only !== undefined && !(only in BENCHMARKS)) {
    process.stderr.write(`unknown benchmark "${only}" (have: ${Object.keys(BENCHMARKS).join(', ')})\n`);
    process.exitCode = 2;
    return;
  }
  for (const [name, run] of Object.entries(BENCHMARKS)) {
    if (only !== undefined && name !== only) continue;
    for (const figure of await run()) {
      if (json) process.stdout.write(`${JSON.stringify({ name: figure.name, value: figure.value, unit: figure.unit })}\n`);
      else process.stdout.write(`${figure.name}: ${figure.value} ${figure.unit}${figure.detail ? ` ${JSON.stringify(figure.detail)}` : ''}\n`);
    }
  }
}

await main();

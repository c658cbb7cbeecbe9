#!/usr/bin/env node
// The main job on a fresh machine: a complete local rotation of the example ring through every
// phase, on the embedded defaults (dotenv targets + file store). It drives the real CLI, waits out
// the short soak windows, checks at every phase that an envelope a producer signs verifies on a
// worker, and finishes by itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'stem-rotor-demo-'));
const config = join(dir, 'stem-rotor.yaml');

function rotor(args, { allow = [0] } = {}) {
  process.stdout.write(`\n$ stem-rotor ${args.join(' ')}\n`);
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env } });
  process.stdout.write(result.stdout);
  if (!allow.includes(result.status)) {
    process.stderr.write(result.stderr);
    throw new Error(`stem-rotor ${args[0]} exited ${result.status}`);
  }
  return result;
}

function phase() {
  const result = spawnSync(process.execPath, [bin, 'status', 'demo', '--config', config, '--json'], { encoding: 'utf8' });
  return JSON.parse(result.stdout).phase;
}

function checkProducerToWorker() {
  const envelope = join(dir, 'envelope.json');
  writeFileSync(envelope, JSON.stringify({ id: `task-${Date.now()}`, name: 'demo.task', args: { value: 1 }, enqueuedAt: new Date().toISOString(), queue: 'default' }));
  const signed = spawnSync(process.execPath, [bin, 'envelope', 'sign', '--file', join(dir, 'producers.env'), '--in', envelope], { encoding: 'utf8' });
  writeFileSync(envelope, signed.stdout);
  const verified = spawnSync(process.execPath, [bin, 'envelope', 'verify', '--file', join(dir, 'workers.env'), '--in', envelope], { encoding: 'utf8' });
  const keyId = JSON.parse(signed.stdout).headers['stem-signature-key'];
  process.stdout.write(`  producer signs with "${keyId}" → worker says: ${verified.stdout.trim()}\n`);
  if (verified.status !== 0) throw new Error('a worker rejected a producer envelope');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

rotor(['init', '--dir', dir, '--force']);
writeFileSync(config, readFileSync(config, 'utf8').replace('propagate: 3s', 'propagate: 2s').replace('drain: 3s', 'drain: 2s'));
rotor(['status', 'demo', '--config', config]);
console.log(`\n== phase: ${phase()}`);
checkProducerToWorker();

rotor(['rotate', 'start', 'demo', '--config', config, '--dry-run']);
rotor(['rotate', 'start', 'demo', '--config', config]);
console.log(`\n== phase: ${phase()}`);
checkProducerToWorker();

while (phase() !== 'stable') {
  const result = rotor(['rotate', 'advance', 'demo', '--config', config], { allow: [0, 3] });
  if (result.status === 3) {
    process.stdout.write(`  blocked by a gate: ${result.stderr.split('\n').find((line) => line.includes('- ')) ?? ''}\n`);
    for (let left = 2; left > 0; left -= 1) {
      process.stdout.write(`  waiting… ${left}s\r`);
      await sleep(1000);
    }
    process.stdout.write('                 \r');
    continue;
  }
  console.log(`\n== phase: ${phase()}`);
  checkProducerToWorker();
}

rotor(['check', 'demo', '--config', config]);
// a short summary of the audit trail, not the raw JSON: `stem-rotor audit demo --json` has all of it
const audit = JSON.parse(spawnSync(process.execPath, [bin, 'audit', 'demo', '--config', config, '--json'], { encoding: 'utf8' }).stdout);
const done = audit.filter((event) => event.outcome === 'ok' && event.details?.transition);
console.log(`\n== audit trail: ${audit.length} records, hash-chained (stem-rotor audit --verify)`);
for (const event of done) console.log(`  ${event.time}  ${event.details.transition.padEnd(8)} → phase ${event.details.phase}, active ${event.details.activeKeyId}`);
console.log(`\nDone: ring "demo" rotated through added → activated → stable. Files are in ${dir}`);

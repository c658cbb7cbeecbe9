/**
 * S7 and "bad input writes nothing": every malformed config, target content or flag gets a clear
 * error naming what and where, exit code 2, and every file stays byte-identical.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { snapshotTree, tempDir } from '../helpers/fs.js';

interface Case {
  readonly name: string;
  /** Mutates the freshly initialised example. */
  readonly setup: (dir: string) => void;
  readonly args?: (dir: string) => string[];
  readonly error: RegExp;
}

const config = (dir: string) => join(dir, 'stem-rotor.yaml');
const editConfig = (edit: (text: string) => string) => (dir: string) => writeFileSync(config(dir), edit(readFileSync(config(dir), 'utf8')));
const editEnv = (file: string, edit: (text: string) => string) => (dir: string) => writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
const setKeys = (file: string, line: string) => editEnv(file, (text) => text.replace(/^STEM_SIGNING_KEYS=.*$/m, line));
const ED_PUB = 'MQKrHe7hFRCoOi1DGdEdQOcfQGqEcTQGt79szn6gTJ0=';
const ED_SEED = 'v/eFuFJGEl0ieIlYionIcFjYKmKK/lMrfi+pGcLsKew=';
const ED_64 = Buffer.concat([Buffer.from(ED_SEED, 'base64'), Buffer.from(ED_PUB, 'base64')]).toString('base64');
const ed25519Ring = (privateKey: string) => (dir: string) => {
  editConfig((t) => t.replace('algorithm: hmac-sha256', 'algorithm: ed25519'))(dir);
  for (const file of ['producers.env', 'workers.env']) {
    writeFileSync(join(dir, file), `STEM_SIGNING_ALGORITHM=ed25519\nSTEM_SIGNING_PUBLIC_KEYS=p:${ED_PUB}\nSTEM_SIGNING_PRIVATE_KEYS=p:${privateKey}\nSTEM_SIGNING_ACTIVE_KEY=p\n`);
  }
};

const cases: Case[] = [
  // config files
  // one line, where and what; never the file's own lines (they may hold a URL with a password)
  { name: 'YAML syntax error', setup: editConfig((t) => `${t}\n  bad: [unclosed\n`), error: /not valid YAML: [^\n]* at line \d+, column \d+\n$/ },
  { name: 'YAML with a repeated key', setup: editConfig((t) => `${t}\nstore:\n  type: file\n`), error: /not valid YAML: duplicated mapping key at line \d+, column \d+\n$/ },
  // YAML 1.2's core schema: a date is a string (a ring named like one), never a Date
  { name: 'a ring named like a date', setup: editConfig((t) => t.replace('rings:\n  demo:', 'rings:\n  2026-11-29:')), error: /unknown ring "demo" \(config .* defines: 2026-11-29\)/ },
  { name: 'unknown top-level key', setup: editConfig((t) => `${t}\nextra: 1\n`), error: /Unrecognized key.*extra/ },
  { name: 'no rings', setup: (dir) => writeFileSync(config(dir), 'version: 1\nrings: {}\n'), error: /rings: define at least one ring/ },
  { name: 'ring without targets', setup: editConfig((t) => t.replace(/    targets:[\s\S]*$/, '    targets: []\n')), error: /rings\.demo\.targets: a ring needs at least one target/ },
  { name: 'unknown algorithm', setup: editConfig((t) => t.replace('algorithm: hmac-sha256', 'algorithm: rsa')), error: /rings\.demo\.algorithm/ },
  { name: 'verifiers audience on an HMAC ring', setup: editConfig((t) => t.replace('path: workers.env', 'path: workers.env\n        audience: verifiers')), error: /rings\.demo\.targets\[1\]\.audience: "verifiers" needs algorithm ed25519/ },
  { name: 'duplicate target names', setup: editConfig((t) => t.replace('name: workers', 'name: producers')), error: /targets\[1\]\.name: "producers" is used twice/ },
  { name: 'unknown provider', setup: editConfig((t) => t.replace('provider: dotenv', 'provider: ftp')), error: /rings\.demo\.targets\[0\]\.provider/ },
  { name: 'dotenv target without path', setup: editConfig((t) => t.replace('        path: producers.env\n', '')), error: /rings\.demo\.targets\[0\]\.path/ },
  { name: 'duration without unit', setup: editConfig((t) => t.replace('propagate: 3s', 'propagate: 600')), error: /rings\.demo\.policy\.propagate: invalid duration "600"/ },
  { name: 'duration in words', setup: editConfig((t) => t.replace('drain: 3s', 'drain: ten minutes')), error: /rings\.demo\.policy\.drain: invalid duration/ },
  { name: 'wrong type for autoAdvance', setup: editConfig((t) => t.replace('autoAdvance: true', 'autoAdvance: "yes"')), error: /rings\.demo\.policy\.autoAdvance/ },
  { name: 'key id prefix with a colon', setup: editConfig((t) => t.replace('keyIdPrefix: demo-', 'keyIdPrefix: "demo:"')), error: /rings\.demo\.keyIdPrefix/ },
  { name: 'unknown gate type', setup: editConfig((t) => t.replace('        - type: soak\n      beforeDrop', '        - type: coinflip\n      beforeDrop')), error: /rings\.demo\.gates\.beforeActivate\[0\]\.type/ },
  { name: 'two gates with one name', setup: editConfig((t) => t.replace('        - type: soak\n      beforeDrop', '        - type: soak\n        - type: soak\n      beforeDrop')), error: /gates\.beforeActivate: two gates are named "soak"/ },
  { name: 'ring name with a slash', setup: editConfig((t) => t.replace('  demo:', '  "de/mo":')), error: /rings\.de\/mo|rings/ },
  { name: 'two targets on one file', setup: editConfig((t) => t.replace('path: workers.env', 'path: producers.env')), error: /already used by demo\/producers/ },
  { name: 'two variables mapped to one field', setup: editConfig((t) => t.replace('path: workers.env', 'path: workers.env\n        fields: { STEM_SIGNING_KEYS: X, STEM_SIGNING_ACTIVE_KEY: X }')), error: /targets\[1\]\.fields: two variables map to the same field/ },
  { name: 'unsupported config version', setup: editConfig((t) => t.replace('version: 1', 'version: 2')), error: /version/ },
  { name: 'unknown store type', setup: editConfig((t) => t.replace('type: file', 'type: postgres')), error: /store\.type/ },
  { name: 'misspelt target key', setup: editConfig((t) => t.replace('path: workers.env', 'paht: workers.env')), error: /targets\[1\]/ },
  { name: 'config file not found', setup: () => undefined, args: (dir) => ['rotate', 'start', 'demo', '--config', join(dir, 'missing.yaml')], error: /missing\.yaml: not found/ },
  { name: 'invalid JSON config', setup: (dir) => writeFileSync(join(dir, 'c.json'), '{"rings": '), args: (dir) => ['rotate', 'start', 'demo', '--config', join(dir, 'c.json')], error: /not valid JSON/ },
  // key strings in targets
  { name: 'key entry without a colon', setup: setKeys('workers.env', 'STEM_SIGNING_KEYS=justsomething'), error: /target "workers".*invalid signing key entry #1/ },
  { name: 'key that is not base64', setup: setKeys('workers.env', 'STEM_SIGNING_KEYS=k:not_base64!'), error: /target "workers".*signing key "k" must be base64 encoded/ },
  { name: 'key without padding', setup: setKeys('producers.env', 'STEM_SIGNING_KEYS=k:YWJjZA'), error: /target "producers".*"k" must be base64/ },
  { name: 'empty key id', setup: setKeys('workers.env', 'STEM_SIGNING_KEYS=:YWJj'), error: /id cannot be empty/ },
  { name: 'active key missing', setup: editEnv('workers.env', (t) => t.replace(/^STEM_SIGNING_ACTIVE_KEY=.*$/m, 'STEM_SIGNING_ACTIVE_KEY=')), error: /target "workers".*Missing STEM_SIGNING_ACTIVE_KEY/ },
  { name: 'active key not among keys', setup: editEnv('workers.env', (t) => t.replace(/^STEM_SIGNING_ACTIVE_KEY=.*$/m, 'STEM_SIGNING_ACTIVE_KEY=ghost')), error: /Active signing key "ghost" not present/ },
  { name: 'unsupported algorithm in a target', setup: editEnv('workers.env', (t) => t.replace('STEM_SIGNING_ALGORITHM=hmac-sha256', 'STEM_SIGNING_ALGORITHM=hmac-sha512')), error: /Unsupported signing algorithm "hmac-sha512"/ },
  { name: 'duplicate key ids', setup: editEnv('workers.env', (t) => t.replace(/^(STEM_SIGNING_KEYS=)(.*)$/m, '$1$2,$2')), error: /SR003.*appears more than once/ },
  { name: 'empty key material', setup: editEnv('workers.env', (t) => t.replace(/^(STEM_SIGNING_KEYS=.*)$/m, '$1,spare:')), error: /SR004.*empty key material/ },
  { name: 'target holds the other algorithm', setup: editEnv('workers.env', (t) => t.replace('STEM_SIGNING_ALGORITHM=hmac-sha256', `STEM_SIGNING_ALGORITHM=ed25519\nSTEM_SIGNING_PUBLIC_KEYS=p:${ED_PUB}`)), error: /target "workers"/ },
  { name: 'signing silently disabled by an algorithm mismatch', setup: editEnv('workers.env', (t) => t.replace('STEM_SIGNING_ALGORITHM=hmac-sha256', 'STEM_SIGNING_ALGORITHM=ed25519')), error: /SR002.*silently disables/ },
  { name: 'target with no keys', setup: editEnv('workers.env', (t) => t.replace(/^STEM_SIGNING_KEYS=.*\n/m, '').replace(/^STEM_SIGNING_ACTIVE_KEY=.*\n/m, '')), error: /target "workers": holds no signing keys/ },
  { name: 'targets disagree', setup: (dir) => writeFileSync(join(dir, 'workers.env'), 'STEM_SIGNING_KEYS=other:YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY=\nSTEM_SIGNING_ACTIVE_KEY=other\n'), error: /disagrees with target/ },
  { name: 'a variable assigned twice in a dotenv file', setup: editEnv('workers.env', (t) => `${t}STEM_SIGNING_ACTIVE_KEY=again\n`), error: /STEM_SIGNING_ACTIVE_KEY is assigned twice/ },
  { name: 'unterminated quote', setup: editEnv('workers.env', (t) => t.replace(/^STEM_SIGNING_ACTIVE_KEY=(.*)$/m, 'STEM_SIGNING_ACTIVE_KEY="$1')), error: /unterminated double quote/ },
  { name: '64-byte Ed25519 private key', setup: ed25519Ring(ED_64), error: /SR006.*64 bytes/ },
  { name: 'Ed25519 seed of the wrong length', setup: ed25519Ring(Buffer.alloc(16, 1).toString('base64')), error: /SR005.*16 bytes/ },
  { name: 'target file missing', setup: (dir) => renameSync(join(dir, 'workers.env'), join(dir, 'gone.env')), error: /target "workers": .*workers\.env: file not found/ },
  // flags and arguments
  { name: 'unknown option', setup: () => undefined, args: (dir) => ['rotate', 'start', 'demo', '--config', config(dir), '--froce'], error: /unknown option '--froce'/ },
  { name: 'override of a gate the next step does not have', setup: (dir) => void cli(['rotate', 'start', 'demo', '--config', config(dir)]), args: (dir) => ['rotate', 'advance', 'demo', '--config', config(dir), '--override', 'approvl', '--reason', 'x'], error: /--override approvl: no such gate before the next step of ring "demo" \(gates: soak\)/ },
  { name: 'advance of a stable ring', setup: () => undefined, args: (dir) => ['rotate', 'advance', 'demo', '--config', config(dir)], error: /ring "demo" is stable; use rotate start/ },
  { name: 'override without reason', setup: () => undefined, args: (dir) => ['rotate', 'advance', 'demo', '--config', config(dir), '--override', 'soak'], error: /--override needs --reason/ },
  { name: 'revoke without --yes', setup: () => undefined, args: (dir) => ['revoke', 'demo', 'k', '--reason', 'x', '--config', config(dir)], error: /confirm with --yes/ },
  { name: 'run with a bad interval', setup: () => undefined, args: (dir) => ['run', '--interval', 'soon', '--config', config(dir)], error: /--interval soon/ },
  { name: 'unknown ring', setup: () => undefined, args: (dir) => ['rotate', 'start', 'nosuch', '--config', config(dir)], error: /unknown ring "nosuch"/ },
  { name: 'missing ring argument', setup: () => undefined, args: (dir) => ['rotate', 'start', '--config', config(dir)], error: /missing required argument 'ring'/ },
];

describe('bad input: clear error, exit 2, nothing written', () => {
  it('the corpus has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)('$name', ({ setup, args, error }) => {
    const dir = tempDir('stem-rotor-bad-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    setup(dir);
    const before = snapshotTree(dir);
    const result = cli(args ? args(dir) : ['rotate', 'start', 'demo', '--config', config(dir)]);
    expect(result.stderr).toMatch(error);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toMatch(/unexpected error|at .*\.js:\d+/);
    expect(snapshotTree(dir)).toEqual(before);
  });
});

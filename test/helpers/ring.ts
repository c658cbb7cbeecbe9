/** Builds real rings for engine tests: dotenv target files in a temp dir, a file store, injected clock and randomness. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import createDotenvProvider from '../../providers/dotenv.js';
import type { Provider } from '../../providers/types.js';
import { fileStoreDir, parseConfig } from '../../src/config/load.js';
import type { RingConfig, TargetConfig } from '../../src/config/schema.js';
import { RingEngine, type EngineDeps } from '../../src/engine/engine.js';
import { generateKey, type KeyMaterial } from '../../src/stem/keys.js';
import { formatKeyList, type Algorithm } from '../../src/stem/signing-env.js';
import { createFileStore } from '../../src/store/file.js';
import { SimulatedClock } from './clock.js';
import { tempDir } from './fs.js';
import { seededRandom } from './random.js';

export interface TargetSpec {
  readonly name: string;
  readonly audience?: 'all' | 'verifiers';
  readonly fields?: Record<string, string>;
}

export interface RingSpec {
  readonly algorithm?: Algorithm;
  readonly targets?: readonly TargetSpec[];
  readonly policy?: Record<string, unknown>;
  readonly gates?: Record<string, unknown>;
  readonly stem?: Record<string, unknown>;
  readonly seed?: string;
}

export const UNRELATED_LINES = '# managed by hand: keep me\nSTEM_BROKER_URL=redis://127.0.0.1:6379/0\n\nexport OTHER="quoted value" # trailing comment\n';

export function envContent(algorithm: Algorithm, audience: 'all' | 'verifiers', key: KeyMaterial, fields: Record<string, string> = {}): string {
  const name = (variable: string) => fields[variable] ?? variable;
  const lines = [`${name('STEM_SIGNING_ALGORITHM')}=${algorithm}`];
  if (algorithm === 'hmac-sha256') {
    lines.push(`${name('STEM_SIGNING_KEYS')}=${formatKeyList([{ id: key.id, material: key.secret as Buffer }])}`, `${name('STEM_SIGNING_ACTIVE_KEY')}=${key.id}`);
  } else {
    lines.push(`${name('STEM_SIGNING_PUBLIC_KEYS')}=${formatKeyList([{ id: key.id, material: key.publicKey as Buffer }])}`);
    if (audience === 'all') lines.push(`${name('STEM_SIGNING_PRIVATE_KEYS')}=${formatKeyList([{ id: key.id, material: key.secret as Buffer }])}`, `${name('STEM_SIGNING_ACTIVE_KEY')}=${key.id}`);
  }
  return `${UNRELATED_LINES}${lines.join('\n')}\n# tail comment\n`;
}

export interface Harness {
  readonly dir: string;
  readonly ring: RingConfig;
  readonly clock: SimulatedClock;
  readonly random: ReturnType<typeof seededRandom>;
  readonly initialKey: KeyMaterial;
  readonly progress: string[];
  engine(overrides?: Partial<EngineDeps>): RingEngine;
  path(target: string): string;
  deps(overrides?: Partial<EngineDeps>): EngineDeps;
}

export function createHarness(spec: RingSpec = {}): Harness {
  const algorithm = spec.algorithm ?? 'hmac-sha256';
  const dir = tempDir();
  const targets: TargetSpec[] = [...(spec.targets ?? [{ name: 'producers' }, { name: 'workers' }])];
  const random = seededRandom(spec.seed ?? 'harness');
  const initialKey = generateKey(algorithm, 'ring-20260101-0001', seededRandom(`${spec.seed ?? 'harness'}:initial`));
  for (const target of targets) {
    writeFileSync(join(dir, `${target.name}.env`), envContent(algorithm, target.audience ?? 'all', initialKey, target.fields), { mode: 0o600 });
  }
  const document = {
    store: { type: 'file', dir: 'state' },
    rings: {
      ring: {
        algorithm,
        keyIdPrefix: 'ring-',
        policy: { propagate: '10m', drain: '1h', ...(spec.policy ?? {}) },
        ...(spec.gates ? { gates: spec.gates } : {}),
        ...(spec.stem ? { stem: spec.stem } : {}),
        targets: targets.map((target) => ({ name: target.name, provider: 'dotenv', path: `${target.name}.env`, audience: target.audience ?? 'all', ...(target.fields ? { fields: target.fields } : {}) })),
      },
    },
  };
  const config = parseConfig(document, join(dir, 'stem-rotor.yaml'));
  const ring = config.rings[0] as RingConfig;
  const clock = new SimulatedClock();
  const progress: string[] = [];
  const store = createFileStore({ dir: fileStoreDir(config), clock });
  const deps = (overrides: Partial<EngineDeps> = {}): EngineDeps => ({
    store,
    clock,
    randomBytes: random,
    actor: { user: 'tester', host: 'test-host' },
    progress: (line) => progress.push(line),
    ...overrides,
  });
  return {
    dir,
    ring,
    clock,
    random,
    initialKey,
    progress,
    deps,
    engine: (overrides) => new RingEngine(ring, deps(overrides)),
    path: (target) => join(dir, `${target}.env`),
  };
}

export function dotenvFor(target: TargetConfig): Provider {
  if (target.provider !== 'dotenv') throw new Error('dotenv only');
  return createDotenvProvider({ target: target.name, path: target.path });
}

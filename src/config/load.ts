/** Config pipeline: read → parse (YAML or JSON) → zod schema → cross-field rules → resolved config. */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatDuration } from '../core/duration.js';
import { resolvePath } from '../files/regular.js';
import { sqlitePath } from '../stem/sql.js';
import { configSchema, defaultGates, stemStoreKind, targetLocation, type StemEndpoint, type RawConfig, type RingConfig, type StoreConfig, type TargetConfig } from './schema.js';

/** Looked for in the working directory, in this order, when no config is named. */
export const DEFAULT_CONFIG_FILES = ['stem-rotor.yaml', 'stem-rotor.yml', 'stem-rotor.json'] as const;

export function defaultConfigFile(): string {
  return DEFAULT_CONFIG_FILES.find((file) => statSync(file, { throwIfNoEntry: false })?.isFile()) ?? DEFAULT_CONFIG_FILES[0];
}

/** Valid, but probably not what was meant: `check` prints these. */
export interface ConfigWarning {
  readonly ring: string;
  /** The named rule that raised it. */
  readonly rule: string;
  readonly message: string;
}

export interface Config {
  readonly path: string;
  readonly store: StoreConfig;
  readonly rings: readonly RingConfig[];
  readonly warnings: readonly ConfigWarning[];
}

function issuePath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    text += typeof segment === 'number' ? `[${segment}]` : text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text === '' ? '(top level)' : text;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${issuePath(issue.path)}: ${issue.message}`);
}

type Rule = (rings: RawConfig['rings']) => string[];

/** Cross-field checks that a schema cannot express, each a small named rule. */
const rules: Rule[] = [
  function verifiersNeedEd25519(rings) {
    return Object.entries(rings).flatMap(([ring, config]) =>
      config.targets.flatMap((target, index) =>
        target.audience === 'verifiers' && config.algorithm === 'hmac-sha256'
          ? [`rings.${ring}.targets[${index}].audience: "verifiers" needs algorithm ed25519 (Stem has no HMAC verify-only mode)`]
          : [],
      ),
    );
  },
  function ringNeedsASigner(rings) {
    return Object.entries(rings).flatMap(([ring, config]) =>
      config.targets.some((target) => target.audience === 'all') ? [] : [`rings.${ring}.targets: at least one target must have audience "all" (it holds the signing keys)`],
    );
  },
  function uniqueTargetNames(rings) {
    return Object.entries(rings).flatMap(([ring, config]) => {
      const seen = new Set<string>();
      return config.targets.flatMap((target, index) => {
        const duplicate = seen.has(target.name);
        seen.add(target.name);
        return duplicate ? [`rings.${ring}.targets[${index}].name: "${target.name}" is used twice`] : [];
      });
    });
  },
  function uniqueGateNames(rings) {
    return Object.entries(rings).flatMap(([ring, config]) =>
      (['beforeActivate', 'beforeDrop'] as const).flatMap((slot) => {
        const names = (config.gates[slot] ?? []).map((gate) => gate.name ?? gate.type);
        const duplicate = names.find((name, index) => names.indexOf(name) !== index);
        return duplicate ? [`rings.${ring}.gates.${slot}: two gates are named "${duplicate}"; give one a name`] : [];
      }),
    );
  },
  function stemGatesNeedSignals(rings) {
    return Object.entries(rings).flatMap(([ring, config]) =>
      (['beforeActivate', 'beforeDrop'] as const).flatMap((slot) =>
        (config.gates[slot] ?? []).flatMap((gate, index) =>
          gate.type.startsWith('stem-') && !config.stem ? [`rings.${ring}.gates.${slot}[${index}]: a ${gate.type} gate needs rings.${ring}.stem (where Stem's Redis is)`] : [],
        ),
      ),
    );
  },
  function uniqueFieldMapping(rings) {
    return Object.entries(rings).flatMap(([ring, config]) =>
      config.targets.flatMap((target, index) => {
        const fields = Object.values(target.fields);
        return new Set(fields).size === fields.length ? [] : [`rings.${ring}.targets[${index}].fields: two variables map to the same field`];
      }),
    );
  },
];

type WarningRule = (ring: string, config: RawConfig['rings'][string]) => string[];

/** Valid configurations that probably do not do what their author meant, each a named rule. */
const warningRules: Record<string, WarningRule> = {
  'gates-replace-defaults'(ring, config) {
    const defaults = defaultGates(config.stem !== undefined);
    return (['beforeActivate', 'beforeDrop'] as const).flatMap((slot) => {
      const own = config.gates[slot];
      if (!own) return [];
      const missing = defaults[slot].map((gate) => gate.type).filter((type) => !own.some((gate) => gate.type === type));
      return missing.length === 0 ? [] : [`rings.${ring}.gates.${slot} replaces the default gates, so ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not run; list ${missing.length === 1 ? 'it' : 'them'} too to keep ${missing.length === 1 ? 'it' : 'them'}`];
    });
  },
  'max-age-below-rotation'(ring, config) {
    const { maxAge, propagate, drain } = config.policy;
    return maxAge < propagate + drain ? [`rings.${ring}.policy.maxAge (${formatDuration(maxAge)}) is shorter than propagate + drain (${formatDuration(propagate + drain)}): a new key is already due before a rotation can finish`] : [];
  },
};

function configWarnings(rings: RawConfig['rings']): ConfigWarning[] {
  return Object.entries(rings).flatMap(([ring, config]) => Object.entries(warningRules).flatMap(([rule, check]) => check(ring, config).map((message) => ({ ring, rule, message }))));
}

/** A dotenv file is one place however many links lead to it: its device and inode. */
function placeOf(target: TargetConfig): string {
  if (target.provider !== 'dotenv') return targetLocation(target);
  const stat = statSync(target.path, { throwIfNoEntry: false });
  return stat ? `file ${resolvePath(target.path)} (device ${stat.dev}, inode ${stat.ino})` : targetLocation(target);
}

function oneTargetPerPlace(rings: readonly RingConfig[]): string[] {
  const owners = new Map<string, string>();
  const errors: string[] = [];
  for (const ring of rings) {
    for (const target of ring.targets) {
      const place = placeOf(target);
      const owner = owners.get(place);
      if (owner) errors.push(`rings.${ring.name}: target "${target.name}" uses ${place}, already used by ${owner}`);
      owners.set(place, `${ring.name}/${target.name}`);
    }
  }
  return errors;
}

/** A SQLite file named relative to the config file, like every other path in it. */
function sqliteWithin(endpoint: StemEndpoint, within: (file: string) => string): StemEndpoint {
  return stemStoreKind(endpoint.url) === 'sqlite' ? { ...endpoint, url: `sqlite://${within(sqlitePath(endpoint.url))}` } : endpoint;
}

export function parseConfig(document: unknown, path: string): Config {
  const parsed = configSchema.safeParse(document);
  if (!parsed.success) throw new ConfigError(`invalid config ${path}:\n  ${formatIssues(parsed.error.issues).join('\n  ')}`);
  const errors = rules.flatMap((rule) => rule(parsed.data.rings));
  const base = dirname(path);
  const within = (file: string): string => (isAbsolute(file) ? file : resolve(base, file));
  const rings: RingConfig[] = Object.entries(parsed.data.rings).map(([name, ring]) => ({
    ...ring,
    name,
    keyIdPrefix: ring.keyIdPrefix ?? `${name}-`,
    ...(ring.stem ? { stem: { ...ring.stem, broker: sqliteWithin(ring.stem.broker, within), ...(ring.stem.backend ? { backend: sqliteWithin(ring.stem.backend, within) } : {}) } } : {}),
    gates: {
      beforeActivate: ring.gates.beforeActivate ?? defaultGates(ring.stem !== undefined).beforeActivate,
      beforeDrop: ring.gates.beforeDrop ?? defaultGates(ring.stem !== undefined).beforeDrop,
    },
    targets: ring.targets.map((target) => {
      switch (target.provider) {
        case 'dotenv':
          return { ...target, path: within(target.path) };
        case 'vault-kv2':
          return target.caFile ? { ...target, caFile: within(target.caFile) } : target;
        case 'kubernetes-secret':
          return target.kubeconfig ? { ...target, kubeconfig: within(target.kubeconfig) } : target;
        case 'aws-secrets-manager':
          return target;
      }
    }),
  }));
  errors.push(...oneTargetPerPlace(rings));
  if (errors.length > 0) throw new ConfigError(`invalid config ${path}:\n  ${errors.join('\n  ')}`);
  const raw = parsed.data.store;
  const store: StoreConfig = raw.type === 'file' ? { ...raw, dir: within(raw.dir) } : raw;
  return { path, store, rings, warnings: configWarnings(parsed.data.rings) };
}

export async function loadConfig(path: string): Promise<Config> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : String((error as Error).message);
    throw new ConfigError(`config ${absolute}: ${reason} (pass --config FILE or set STEM_ROTOR_CONFIG)`);
  }
  let document: unknown;
  try {
    if (absolute.endsWith('.json')) {
      document = JSON.parse(text);
    } else {
      document = parseYaml(text, { prettyErrors: true });
    }
  } catch (error) {
    throw new ConfigError(`config ${absolute}: not valid ${absolute.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  const config = parseConfig(document ?? {}, absolute);
  await checkStartWindows(config);
  return config;
}

/** Cron expressions are checked only when a ring has a start window (cron-parser loads lazily). */
export async function checkStartWindows(config: Config): Promise<void> {
  const windows = config.rings.filter((ring) => ring.policy.startWindow);
  if (windows.length === 0) return;
  const { cronProblem } = await import('../core/cron-window.js');
  const errors = windows.flatMap((ring) => {
    const problem = cronProblem(ring.policy.startWindow?.cron ?? '');
    return problem ? [`rings.${ring.name}.policy.startWindow.cron: ${problem}`] : [];
  });
  if (errors.length > 0) throw new ConfigError(`invalid config ${config.path}:\n  ${errors.join('\n  ')}`);
}

/** The file store's directory; throws for a config whose store is not a file store. */
export function fileStoreDir(config: Config): string {
  if (config.store.type !== 'file') throw new ConfigError(`config ${config.path} uses a ${config.store.type} store, not a file store`);
  return config.store.dir;
}

export function findRing(config: Config, name: string): RingConfig {
  const ring = config.rings.find((candidate) => candidate.name === name);
  if (!ring) throw new ConfigError(`unknown ring "${name}" (config ${config.path} defines: ${config.rings.map((r) => r.name).join(', ')})`);
  return ring;
}

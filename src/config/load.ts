/** Config pipeline: read → parse (YAML or JSON) → zod schema → cross-field rules → resolved config. */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CORE_SCHEMA, load as parseYaml } from 'js-yaml';
import type { z } from 'zod';
import { ConfigError, InvalidConfigError } from '../errors.js';
import { formatDuration } from '../duration.js';
import { resolvePath } from '../files/regular.js';
import { sqlitePath } from '../stem/sql.js';
import { WINDOW_GATE, configSchema, defaultGates, type NotifySink, stemStoreKind, targetLocation, type StemEndpoint, type RawConfig, type RingConfig, type StoreConfig, type TargetConfig } from './schema.js';

/** Looked for in the working directory, in this order, when no config is named. */
export const DEFAULT_CONFIG_FILES = ['stem-rotor.yaml', 'stem-rotor.yml', 'stem-rotor.json'] as const;

export function defaultConfigFile(): string {
  return DEFAULT_CONFIG_FILES.find((file) => statSync(file, { throwIfNoEntry: false })?.isFile()) ?? DEFAULT_CONFIG_FILES[0];
}

/** What one named rule found: an error (the config is refused) or a warning (valid, but probably not what was meant). */
export interface ConfigFinding {
  /** The named rule that raised it. */
  readonly rule: string;
  /** Where in the config: `rings.main.targets[1].audience`. */
  readonly path: string;
  readonly message: string;
  /** The ring it concerns, if one. */
  readonly ring?: string;
}

/** Valid, but probably not what was meant: `check` prints these. */
export type ConfigWarning = ConfigFinding & { readonly ring: string };

export interface Config {
  readonly path: string;
  readonly store: StoreConfig;
  /** Every sink named: its own name, else `<type>-<position>`. */
  readonly notify: readonly (NotifySink & { readonly name: string })[];
  readonly rings: readonly RingConfig[];
  readonly warnings: readonly ConfigWarning[];
}

/** Validation as a value: the config when there are no errors, and everything every rule found. */
export interface ConfigValidation {
  readonly config: Config | null;
  readonly errors: readonly ConfigFinding[];
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

/** A ring rule's finding before it is named: where (under `rings.RING`) and what. */
type Found = readonly [path: string, message: string];
type RingRule = (ring: string, config: RawConfig['rings'][string]) => Found[];
const SLOTS = ['beforeActivate', 'beforeDrop'] as const;

/** Cross-field checks that a schema cannot express: the config is refused. */
const errorRules: Record<string, RingRule> = {
  'verifiers-need-ed25519'(ring, config) {
    return config.targets.flatMap((target, index): Found[] =>
      target.audience === 'verifiers' && config.algorithm === 'hmac-sha256' ? [[`rings.${ring}.targets[${index}].audience`, '"verifiers" needs algorithm ed25519 (Stem has no HMAC verify-only mode)']] : [],
    );
  },
  'ring-needs-a-signer'(ring, config) {
    return config.targets.some((target) => target.audience === 'all') ? [] : [[`rings.${ring}.targets`, 'at least one target must have audience "all" (it holds the signing keys)']];
  },
  'unique-target-names'(ring, config) {
    const seen = new Set<string>();
    return config.targets.flatMap((target, index): Found[] => {
      const duplicate = seen.has(target.name);
      seen.add(target.name);
      return duplicate ? [[`rings.${ring}.targets[${index}].name`, `"${target.name}" is used twice`]] : [];
    });
  },
  'unique-gate-names'(ring, config) {
    return SLOTS.flatMap((slot): Found[] => {
      const names = (config.gates[slot] ?? []).map((gate) => gate.name ?? gate.type);
      const duplicate = names.find((name, index) => names.indexOf(name) !== index);
      if (names.includes(WINDOW_GATE)) return [[`rings.${ring}.gates.${slot}`, `"${WINDOW_GATE}" is the built-in gate of policy.windows and policy.freeze; name yours otherwise`]];
      return duplicate ? [[`rings.${ring}.gates.${slot}`, `two gates are named "${duplicate}"; give one a name`]] : [];
    });
  },
  'stem-gates-need-stem'(ring, config) {
    return SLOTS.flatMap((slot) =>
      (config.gates[slot] ?? []).flatMap((gate, index): Found[] =>
        gate.type.startsWith('stem-') && !config.stem ? [[`rings.${ring}.gates.${slot}[${index}]`, `a ${gate.type} gate needs rings.${ring}.stem (where Stem's broker is)`]] : [],
      ),
    );
  },
  'one-start-window'(ring, config) {
    return config.policy.startWindow && config.policy.windows.start ? [[`rings.${ring}.policy.startWindow`, 'give the start window once: windows.start replaces startWindow']] : [];
  },
  'unique-field-mapping'(ring, config) {
    return config.targets.flatMap((target, index): Found[] => {
      const fields = Object.values(target.fields);
      return new Set(fields).size === fields.length ? [] : [[`rings.${ring}.targets[${index}].fields`, 'two variables map to the same field']];
    });
  },
};

/** Valid configurations that probably do not do what their author meant. */
const warningRules: Record<string, RingRule> = {
  'gates-replace-defaults'(ring, config) {
    const defaults = defaultGates(config.stem !== undefined);
    return SLOTS.flatMap((slot): Found[] => {
      const own = config.gates[slot];
      if (!own) return [];
      const missing = defaults[slot].map((gate) => gate.type).filter((type) => !own.some((gate) => gate.type === type));
      const them = missing.length === 1 ? 'it' : 'them';
      return missing.length === 0 ? [] : [[`rings.${ring}.gates.${slot}`, `replaces the default gates, so ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not run; list ${them} too to keep ${them}`]];
    });
  },
  'max-age-below-rotation'(ring, config) {
    const { maxAge, propagate, drain } = config.policy;
    return maxAge < propagate + drain ? [[`rings.${ring}.policy.maxAge`, `(${formatDuration(maxAge)}) is shorter than propagate + drain (${formatDuration(propagate + drain)}): a new key is already due before a rotation can finish`]] : [];
  },
};

function runRules(rules: Record<string, RingRule>, rings: RawConfig['rings']): ConfigWarning[] {
  return Object.entries(rings).flatMap(([ring, config]) => Object.entries(rules).flatMap(([rule, check]) => check(ring, config).map(([path, message]) => ({ rule, path, message, ring }))));
}

/** A dotenv file is one place however many links lead to it: its device and inode. */
function placeOf(target: TargetConfig): string {
  if (target.provider !== 'dotenv') return targetLocation(target);
  const stat = statSync(target.path, { throwIfNoEntry: false });
  return stat ? `file ${resolvePath(target.path)} (device ${stat.dev}, inode ${stat.ino})` : targetLocation(target);
}

/** Two targets that are one place would each be written as if the other did not exist. */
function oneTargetPerPlace(rings: readonly RingConfig[]): ConfigFinding[] {
  const owners = new Map<string, string>();
  const errors: ConfigFinding[] = [];
  for (const ring of rings) {
    for (const target of ring.targets) {
      const place = placeOf(target);
      const owner = owners.get(place);
      if (owner) errors.push({ rule: 'one-target-per-place', path: `rings.${ring.name}`, message: `target "${target.name}" uses ${place}, already used by ${owner}`, ring: ring.name });
      owners.set(place, `${ring.name}/${target.name}`);
    }
  }
  return errors;
}

/** A SQLite file named relative to the config file, like every other path in it. */
function sqliteWithin(endpoint: StemEndpoint, within: (file: string) => string): StemEndpoint {
  return stemStoreKind(endpoint.url) === 'sqlite' ? { ...endpoint, url: `sqlite://${within(sqlitePath(endpoint.url))}` } : endpoint;
}

/** Every rule over a parsed document; the config only when no rule found an error. Pure but for dotenv targets' inodes. */
export function validateConfig(document: unknown, path: string): ConfigValidation {
  // parsed once per process: compiling zod's fast path for each object schema costs more than it saves
  const parsed = configSchema.safeParse(document, { jitless: true });
  if (!parsed.success) {
    return { config: null, warnings: [], errors: parsed.error.issues.map((issue) => ({ rule: 'schema', path: issuePath(issue.path), message: issue.message })) };
  }
  const errors: ConfigFinding[] = runRules(errorRules, parsed.data.rings);
  const warnings = runRules(warningRules, parsed.data.rings);
  const base = dirname(path);
  const within = (file: string): string => (isAbsolute(file) ? file : resolve(base, file));
  const rings: RingConfig[] = Object.entries(parsed.data.rings).map(([name, ring]) => ({
    ...ring,
    name,
    keyIdPrefix: ring.keyIdPrefix ?? `${name}-`,
    policy: { ...ring.policy, windows: { ...ring.policy.windows, ...(ring.policy.startWindow ? { start: ring.policy.startWindow } : {}) } },
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
  parsed.data.notify.forEach((sink, index) => {
    for (const ring of sink.rings ?? []) {
      if (!(ring in parsed.data.rings)) errors.push({ rule: 'notify-known-rings', path: `notify[${index}].rings`, message: `no ring "${ring}" (rings: ${Object.keys(parsed.data.rings).join(', ')})` });
    }
  });
  if (errors.length > 0) return { config: null, errors, warnings };
  const raw = parsed.data.store;
  const store: StoreConfig = raw.type === 'file' ? { ...raw, dir: within(raw.dir) } : raw;
  const notify = parsed.data.notify.map((sink, index) => ({ ...sink, name: sink.name ?? `${sink.type}-${index + 1}` }));
  return { config: { path, store, notify, rings, warnings }, errors, warnings };
}

/** The config, or an InvalidConfigError listing every error found. */
export function parseConfig(document: unknown, path: string): Config {
  const { config, errors } = validateConfig(document, path);
  if (!config) throw new InvalidConfigError(path, errors);
  return config;
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
      // YAML 1.2's core schema, as editors read the file: dates stay strings, no custom tags
      document = parseYaml(text, { schema: CORE_SCHEMA });
    }
  } catch (error) {
    // one line: where and what, never the file's lines themselves (a URL in it may carry a password)
    const { reason, mark } = error as { reason?: string; mark?: { line: number; column: number } };
    const what = reason && mark ? `${reason} at line ${mark.line + 1}, column ${mark.column + 1}` : (error as Error).message;
    throw new ConfigError(`config ${absolute}: not valid ${absolute.endsWith('.json') ? 'JSON' : 'YAML'}: ${what}`);
  }
  const config = parseConfig(document ?? {}, absolute);
  await checkWindows(config);
  return config;
}

/** Cron expressions and freeze dates are checked only when a ring has any (cron-parser and luxon load lazily). */
export async function checkWindows(config: Config): Promise<void> {
  const timed = config.rings.filter((ring) => Object.values(ring.policy.windows).some(Boolean) || ring.policy.freeze.length > 0);
  if (timed.length === 0) return;
  const { cronProblem, freezeProblem } = await import('../core/windows.js');
  const errors = timed.flatMap((ring): ConfigFinding[] => [
    ...Object.entries(ring.policy.windows).flatMap(([step, window]): ConfigFinding[] => {
      const problem = window ? cronProblem(window.cron, window.timezone) : null;
      return problem ? [{ rule: 'window-cron', path: `rings.${ring.name}.policy.windows.${step}.cron`, message: problem, ring: ring.name }] : [];
    }),
    ...ring.policy.freeze.flatMap((freeze, index): ConfigFinding[] => {
      const problem = freezeProblem(freeze);
      return problem ? [{ rule: 'freeze-dates', path: `rings.${ring.name}.policy.freeze[${index}]`, message: problem, ring: ring.name }] : [];
    }),
  ]);
  if (errors.length > 0) throw new InvalidConfigError(config.path, errors);
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

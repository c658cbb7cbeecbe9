/**
 * Config that editors understand and a shell that completes: `config schema` is a JSON Schema every
 * shipped example (and `init`'s config) satisfies and typos fail; `init` points yaml-language-server
 * at it; `completion bash` completes commands, subcommands and flags in a real bash.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

function schema(): Record<string, unknown> {
  const result = cli(['config', 'schema']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

/** Every config shipped in examples/: the stem-rotor.yaml files and the one the CronJob embeds. */
function exampleConfigs(): [string, unknown][] {
  const files = readdirSync(EXAMPLES).flatMap((dir) => (readdirSync(join(EXAMPLES, dir)).includes('stem-rotor.yaml') ? [join(dir, 'stem-rotor.yaml')] : []));
  const cronJob = readFileSync(join(EXAMPLES, 'kubernetes', 'cronjob.yaml'), 'utf8').split(/^---$/m).map((text) => parse(text) as { kind?: string; data?: Record<string, string> }).find((document) => document.kind === 'ConfigMap');
  return [...files.map((file): [string, unknown] => [file, parse(readFileSync(join(EXAMPLES, file), 'utf8'))]), ['kubernetes/cronjob.yaml ConfigMap', parse(cronJob?.data?.['stem-rotor.yaml'] ?? '')]];
}

describe('config schema', () => {
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema());

  it('accepts every shipped example and what init writes', () => {
    const examples = exampleConfigs();
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const [name, document] of examples) expect(validate(document), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    const dir = tempDir('stem-rotor-schema-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const text = readFileSync(join(dir, 'stem-rotor.yaml'), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./stem-rotor.schema.json');
    expect(JSON.parse(readFileSync(join(dir, 'stem-rotor.schema.json'), 'utf8'))).toEqual(schema());
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
  });

  it('rejects what stem-rotor rejects: an unknown key, a wrong provider, a missing path', () => {
    const ring = (target: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ rings: { demo: { targets: [target], ...extra } } });
    expect(validate(ring({ name: 'p', provider: 'dotenv', path: 'p.env' }))).toBe(true);
    expect(validate(ring({ name: 'p', provider: 'dotenv', path: 'p.env' }, { polcy: {} }))).toBe(false);
    expect(validate(ring({ name: 'p', provider: 'ftp', path: 'p.env' }))).toBe(false);
    expect(validate(ring({ name: 'p', provider: 'dotenv' }))).toBe(false);
    expect(validate(ring({ name: 'p', provider: 'dotenv', path: 'p.env' }, { gates: { beforeDrop: [{ type: 'approval', approvalTtl: '1h', requireDistinctApprover: 'yes' }] } }))).toBe(false);
  });
});

describe('completion', () => {
  /** What bash offers for the words typed so far (the last one is being completed). */
  function complete(...typed: string[]): string[] {
    const script = cli(['completion', 'bash']).stdout;
    const words = ['stem-rotor', ...typed].map((word) => `'${word}'`).join(' ');
    const run = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _stem_rotor; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout.split('\n').filter(Boolean);
  }

  it('bash completes commands, subcommands, flags and shells', () => {
    expect(complete('ro')).toEqual(['rotate']);
    expect(complete('rotate', 'a')).toEqual(['advance', 'abort']);
    expect(complete('rotate', 'advance', '--ov')).toEqual(['--override']);
    expect(complete('rotate', 'start', '--ap')).toEqual([]); // start has no --approve
    expect(complete('--config', 'x.yaml', 'approve', '--')).toEqual(expect.arrayContaining(['--reason', '--as', '--config']));
    expect(complete('completion', '')).toEqual(expect.arrayContaining(['bash', 'zsh', 'fish']));
  });

  it('zsh loads the bash function through bashcompinit; fish gets native completions', () => {
    expect(cli(['completion', 'zsh']).stdout).toContain('autoload -U +X bashcompinit && bashcompinit\n_stem_rotor() {');
    const fish = cli(['completion', 'fish']).stdout;
    expect(fish).toContain("complete -c stem-rotor -f -n '__fish_use_subcommand' -a approve -d ");
    expect(fish).toContain("complete -c stem-rotor -n '__fish_seen_subcommand_from advance' -l override -r -d ");
    expect(cli(['completion', 'tcsh']).code).toBe(2);
  });
});

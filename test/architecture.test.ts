/**
 * The import graph points one way: a module imports only from its own layer's directory or from a
 * layer below it. Static and lazy (`import()`) imports both count.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** Lowest first. `src` alone is the leaves at the top of src/ (errors, clock, duration). */
const LAYERS: readonly (readonly string[])[] = [
  ['src'],
  ['src/files', 'src/endpoints'],
  ['src/stem'],
  ['src/core', 'src/envfile'],
  ['src/config'],
  ['providers', 'src/store', 'src/gates', 'src/notify'],
  ['src/engine'],
  ['src/cli'],
];

function layerOf(file: string): { dir: string; rank: number } {
  const dir = dirname(relative(ROOT, file));
  const owner = LAYERS.flat().filter((candidate) => dir === candidate || dir.startsWith(`${candidate}/`)).sort((a, b) => b.length - a.length)[0];
  if (owner === undefined) throw new Error(`${relative(ROOT, file)} is in no layer; add its directory to LAYERS`);
  return { dir: owner, rank: LAYERS.findIndex((layer) => layer.includes(owner)) };
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(ROOT, dir, name));
}

/** Every relative import of every source file, as [importer, imported] layer directories. */
function edges(): { from: string; to: string; fromRank: number; toRank: number; where: string }[] {
  return [...sources('src'), ...sources('providers')].flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) => match[1] as string);
    const from = layerOf(file);
    return specifiers.map((specifier) => {
      const to = layerOf(resolve(dirname(file), specifier));
      return { from: from.dir, to: to.dir, fromRank: from.rank, toRank: to.rank, where: `${relative(ROOT, file)} → ${specifier}` };
    });
  });
}

describe('architecture', () => {
  const all = edges();

  it('reads the imports it judges (the graph is not empty, lazy imports included)', () => {
    expect(all.length).toBeGreaterThan(200);
    expect(all.some((edge) => edge.where.startsWith('src/cli/main.ts') && edge.where.includes('./commands/'))).toBe(true);
  });

  it('has no import from a lower layer to a higher one, nor across one layer', () => {
    const wrong = all.filter((edge) => edge.from !== edge.to && edge.toRank >= edge.fromRank);
    expect(wrong.map((edge) => edge.where)).toEqual([]);
  });
});

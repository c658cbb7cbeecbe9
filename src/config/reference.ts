/**
 * The configuration reference (docs/configuration.md), generated from the config's JSON Schema so it
 * cannot fall behind the schema: every field with its type, default and description. A test checks
 * the committed file against `stem-rotor config reference`.
 */
import { configJsonSchema } from './json-schema.js';

interface Node {
  readonly type?: string | readonly string[];
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly default?: unknown;
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Node>>;
  readonly required?: readonly string[];
  readonly items?: Node;
  readonly additionalProperties?: Node | boolean;
  readonly oneOf?: readonly Node[];
  readonly anyOf?: readonly Node[];
  readonly format?: string;
}

function typeOf(node: Node): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((value) => `\`${String(value)}\``).join(' \\| ');
  const variants = node.oneOf ?? node.anyOf;
  if (variants) return [...new Set(variants.map(typeOf))].join(' \\| ');
  if (node.type === 'array') return `list of ${node.items ? typeOf(node.items) : 'values'}`;
  if (node.type === 'object' && node.additionalProperties && typeof node.additionalProperties === 'object' && !node.properties) return `map of ${typeOf(node.additionalProperties)}`;
  const types: readonly string[] = Array.isArray(node.type) ? node.type : [node.type ?? 'any'];
  if (types.includes('string') && types.includes('number')) return 'duration';
  const type = types.join(' \\| ');
  return type === 'string' && node.format ? `string (${node.format})` : type;
}

/** A union's variants are told apart by their one `const` property (provider, type, method…). */
function variantName(node: Node): string | null {
  for (const [name, property] of Object.entries(node.properties ?? {})) if (property.const !== undefined) return `${name}: ${String(property.const)}`;
  return node.required?.[0] ?? null;
}

function rows(node: Node, path: string, out: string[], sections: [string, Node][]): void {
  for (const [name, property] of Object.entries(node.properties ?? {})) {
    const field = `${path}${name}`;
    const required = node.required?.includes(name) && property.default === undefined ? 'required' : property.default === undefined ? '' : `\`${JSON.stringify(property.default)}\``;
    out.push(`| \`${field}\` | ${typeOf(property).replace(/\n/g, ' ')} | ${required} | ${(property.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
    const inner = property.type === 'array' ? property.items : property.additionalProperties && typeof property.additionalProperties === 'object' && !property.properties ? property.additionalProperties : property;
    const prefix = property.type === 'array' ? `${field}[]` : inner !== property ? `${field}.<name>` : field;
    if (inner?.properties) rows(inner, `${prefix}.`, out, sections);
    const variants = inner?.oneOf ?? inner?.anyOf;
    if (variants?.some((variant) => variant.properties)) for (const variant of variants) if (variant.properties) sections.push([`${prefix} (${variantName(variant) ?? typeOf(variant)})`, variant]);
  }
}

/** `rendered`: each variant's first title, so one used in several places (gate kinds, hooks) is written once. */
function table(title: string, node: Node, level: string, rendered: Map<string, string>): string[] {
  const out = [`${level} \`${title}\``, '', '| field | type | default | description |', '|---|---|---|---|'];
  const sections: [string, Node][] = [];
  const base = title.replace(/ \(.*\)$/, '');
  rows(node, base === '(top level)' ? '' : `${base}.`, out, sections);
  return [
    ...out,
    '',
    ...sections.flatMap(([name, variant]) => {
      const key = JSON.stringify(variant);
      const first = rendered.get(key);
      if (first) return first === name ? [] : [`${level === '##' ? '###' : level} \`${name}\``, '', `The same fields as \`${first}\`.`, ''];
      rendered.set(key, name);
      return table(name, variant, '###', rendered);
    }),
  ];
}

export function configReference(): string {
  const schema = configJsonSchema() as Node;
  return [
    '# Configuration reference',
    '',
    'Generated from the config schema by `stem-rotor config reference`; `stem-rotor config schema` prints the JSON Schema it comes from. Durations are strings like `90s`, `10m`, `6h`, `30d` (or milliseconds).',
    '',
    ...table('(top level)', schema, '##', new Map()),
  ].join('\n');
}

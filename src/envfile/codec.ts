/**
 * Env files as bytes. A file is decoded as latin1 (one char per byte, lossless), so every byte we do
 * not own — other lines, a BOM, each line's own ending, Latin-1 or UTF-8 text in comments — is
 * written back exactly. Only the value span of a managed assignment changes; its quoting, `export`
 * prefix and inline comment stay.
 *
 * Who reads the file decides what a line means (the dialect):
 * - `dotenv`: dotenv libraries (and docker compose `env_file`): quotes stripped, ` #` starts a
 *   comment in an unquoted value, `export` allowed.
 * - `docker`: `docker run --env-file`: everything after the first `=` is the value, quotes and `#`
 *   included; `export` makes the variable name invalid.
 * - `systemd`: `EnvironmentFile=`: quotes removed (also mid-value), backslash escapes, `#` only
 *   starts a comment at the start of a line, trailing whitespace trimmed; an `export` line is ignored.
 */
import { TargetContentError } from '../errors.js';
import { STEM_ENV_NAMES, type SigningEnv, type StemEnvName } from '../stem/signing-env.js';

export const DIALECTS = ['dotenv', 'docker', 'systemd'] as const;
export type Dialect = (typeof DIALECTS)[number];

const BOM = '\xEF\xBB\xBF';
const LINE = /^([ \t]*)((?:export[ \t]+)?)([A-Za-z_][A-Za-z0-9_.]*)([ \t]*)=([ \t]*)(.*)$/;

interface Line {
  /** The line without its ending (and without the BOM on the first line). */
  readonly body: string;
  readonly ending: string;
}

export interface Assignment {
  readonly name: string;
  readonly index: number;
  readonly exported: boolean;
  /** The value as the declared dialect's reader sees it (UTF-8 decoded). */
  readonly value: string;
  /** What the line's author meant: the dotenv reading, which is how people write these files. */
  readonly intended: string;
  /** Where the value text sits in `body`; a rewrite replaces exactly this span. */
  readonly span: { readonly start: number; readonly end: number };
  readonly quote: '"' | "'" | '';
}

export interface EnvFile {
  readonly bom: boolean;
  readonly lines: readonly Line[];
}

function splitLines(text: string): EnvFile {
  const bom = text.startsWith(BOM);
  const body = bom ? text.slice(BOM.length) : text;
  const lines: Line[] = [];
  let start = 0;
  while (start < body.length) {
    const newline = body.indexOf('\n', start);
    const end = newline === -1 ? body.length : newline;
    const cr = end > start && body[end - 1] === '\r';
    lines.push({ body: body.slice(start, cr ? end - 1 : end), ending: newline === -1 ? '' : cr ? '\r\n' : '\n' });
    start = end + 1;
  }
  return { bom, lines };
}

export function decodeEnvFile(content: Buffer): EnvFile {
  return splitLines(content.toString('latin1'));
}

export function encodeEnvFile(file: EnvFile): Buffer {
  return Buffer.from((file.bom ? BOM : '') + file.lines.map((line) => line.body + line.ending).join(''), 'latin1');
}

const utf8 = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');

interface ValueSyntax {
  readonly quote: '"' | "'" | '';
  readonly span: { readonly start: number; readonly end: number };
  /** dotenv's reading, or null when a quote is never closed. */
  readonly dotenv: string | null;
}

/** The dotenv view of the text after `=`: quoted span, or the unquoted value before ` #`. */
function valueSyntax(rest: string, offset: number): ValueSyntax {
  const quote = rest[0];
  if (quote === '"' || quote === "'") {
    let end = 1;
    while (end < rest.length && rest[end] !== quote) end += quote === '"' && rest[end] === '\\' ? 2 : 1;
    if (end >= rest.length) return { quote, span: { start: offset + 1, end: offset + rest.length }, dotenv: null };
    const inner = rest.slice(1, end);
    const dotenv = quote === '"' ? inner.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1') : inner;
    return { quote, span: { start: offset + 1, end: offset + end }, dotenv };
  }
  const comment = rest.search(/[ \t]#/);
  const value = (comment === -1 ? rest : rest.slice(0, comment)).trimEnd();
  return { quote: '', span: { start: offset, end: offset + value.length }, dotenv: value };
}

/** systemd's env-file value rules (src/basic/env-file.c): quotes open anywhere, escapes, trailing trim. */
function systemdValue(rest: string): string {
  let value = '';
  let keepUntil = 0;
  let state: 'plain' | '"' | "'" = 'plain';
  for (let i = 0; i < rest.length; i += 1) {
    const c = rest[i] as string;
    if (state === "'") {
      if (c === "'") state = 'plain';
      else value += c;
      keepUntil = value.length;
    } else if (state === '"') {
      if (c === '"') state = 'plain';
      else if (c === '\\' && i + 1 < rest.length) value += rest[++i];
      else value += c;
      keepUntil = value.length;
    } else if (c === '"' || c === "'") {
      state = c;
    } else if (c === '\\' && i + 1 < rest.length) {
      value += rest[++i];
      keepUntil = value.length;
    } else {
      value += c;
      if (c !== ' ' && c !== '\t') keepUntil = value.length;
    }
  }
  return value.slice(0, keepUntil);
}

interface LineParts {
  readonly exported: boolean;
  /** Whitespace between the name and `=`, and between `=` and the value. */
  readonly spaceBefore: string;
  readonly spaceAfter: string;
  readonly rest: string;
}

/** How the dialect's reader sees the line: its value, or why it does not see the variable at all. */
function dialectValue(dialect: Dialect, { exported, spaceBefore, spaceAfter, rest }: LineParts, syntax: ValueSyntax): { value: string } | { unseen: string } {
  switch (dialect) {
    case 'dotenv':
      return syntax.dotenv === null ? { unseen: `has an unterminated ${syntax.quote === '"' ? 'double' : 'single'} quote (multi-line values are not supported)` } : { value: syntax.dotenv };
    case 'docker':
      if (exported) return { unseen: 'starts with "export", which docker --env-file rejects as a variable name with whitespace' };
      if (spaceBefore !== '') return { unseen: 'has whitespace before "=", which docker --env-file rejects as a variable name with whitespace' };
      return { value: spaceAfter + rest };
    case 'systemd':
      return exported ? { unseen: 'starts with "export"; systemd EnvironmentFile ignores the whole line' } : { value: systemdValue(rest) };
  }
}

/**
 * The managed assignments of a file, read as `dialect` reads it. A name assigned twice, a line the
 * reader would not see, and an unterminated quote are conflicting content (exit 2), never guessed at.
 */
export function parseEnvFile(file: EnvFile, names: readonly string[], dialect: Dialect, target: string): Map<string, Assignment> {
  const wanted = new Set(names);
  const found = new Map<string, Assignment>();
  file.lines.forEach((line, index) => {
    const match = LINE.exec(line.body);
    if (!match || !wanted.has(match[3] as string)) return;
    const name = match[3] as string;
    const where = `line ${index + 1} (${name})`;
    const previous = found.get(name);
    if (previous) throw new TargetContentError(target, `${name} is assigned twice (lines ${previous.index + 1} and ${index + 1}); loaders disagree on which wins`);
    const exported = (match[2] as string) !== '';
    const parts: LineParts = { exported, spaceBefore: match[4] as string, spaceAfter: match[5] as string, rest: match[6] as string };
    const offset = (match[1] as string).length + (match[2] as string).length + name.length + parts.spaceBefore.length + 1 + parts.spaceAfter.length;
    const syntax = valueSyntax(parts.rest, offset);
    const read = dialectValue(dialect, parts, syntax);
    if ('unseen' in read) throw new TargetContentError(target, `${where} ${read.unseen}`);
    found.set(name, {
      name,
      index,
      exported,
      value: utf8(read.value),
      intended: utf8(syntax.dotenv ?? read.value),
      span: syntax.span,
      quote: syntax.quote,
    });
  });
  return found;
}

/** A value fits a line's quoting only if every reader sees it exactly: no quoting, escaping or comment rules apply. */
function fitsUnchanged(value: string, quote: Assignment['quote']): boolean {
  if (/[\r\n\\$`]/.test(value)) return false;
  if (quote === '"') return !value.includes('"');
  if (quote === "'") return !value.includes("'");
  return !/[\s"'#;]/.test(value);
}

function lineEnding(file: EnvFile): string {
  return [...file.lines].reverse().find((line) => line.ending !== '')?.ending ?? '\n';
}

/**
 * Sets managed values, changing only their value spans; variables not in the file are appended.
 * The result is re-read as `dialect` reads it and must give back exactly the values set.
 */
export function renderEnvFile(file: EnvFile, set: Readonly<Record<string, string>>, dialect: Dialect, target: string): EnvFile {
  const assignments = parseEnvFile(file, Object.keys(set), dialect, target);
  const lines = [...file.lines];
  const appended: Line[] = [];
  const ending = lineEnding(file);
  for (const [name, value] of Object.entries(set)) {
    const existing = assignments.get(name);
    if (!fitsUnchanged(value, existing?.quote ?? '')) throw new TargetContentError(target, `refusing to write ${name}: the value would need quoting or escaping`);
    const encoded = Buffer.from(value, 'utf8').toString('latin1');
    if (existing) {
      const line = lines[existing.index] as Line;
      lines[existing.index] = { ...line, body: line.body.slice(0, existing.span.start) + encoded + line.body.slice(existing.span.end) };
    } else {
      appended.push({ body: `${name}=${encoded}`, ending });
    }
  }
  if (appended.length > 0 && lines.length > 0 && (lines[lines.length - 1] as Line).ending === '') {
    lines[lines.length - 1] = { ...(lines[lines.length - 1] as Line), ending };
  }
  const next = { bom: file.bom, lines: [...lines, ...appended] };
  const check = parseEnvFile(next, Object.keys(set), dialect, target);
  for (const [name, value] of Object.entries(set)) {
    if (check.get(name)?.value !== value) throw new TargetContentError(target, `refusing to write ${name}: a ${dialect} reader would not read back the value written`);
  }
  return next;
}

export interface DialectFinding {
  readonly variable: string;
  readonly line: number;
  readonly message: string;
}

/** Lines whose value the declared reader sees differently than the line's author meant. */
export function dialectFindings(assignments: ReadonlyMap<string, Assignment>, dialect: Dialect): DialectFinding[] {
  return [...assignments.values()]
    .filter((assignment) => assignment.value !== assignment.intended)
    .map((assignment) => ({
      variable: assignment.name,
      line: assignment.index + 1,
      message: `a ${dialect} reader sees a different value than written (${assignment.value.length} characters instead of ${assignment.intended.length}${assignment.quote ? `: the ${assignment.quote === '"' ? 'double' : 'single'} quotes are part of it` : ': the inline comment is part of it'})`,
    }));
}

/** The Stem signing variables of an env file, as `dialect` reads them. */
export function signingEnvOf(content: Buffer | string, where: string, dialect: Dialect = 'dotenv'): SigningEnv {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const env: SigningEnv = {};
  for (const [name, assignment] of parseEnvFile(decodeEnvFile(bytes), STEM_ENV_NAMES, dialect, where)) env[name as StemEnvName] = assignment.value;
  return env;
}

import { parseDuration } from '../../duration.js';
import type { DlqOptions, DlqReport, ReplayResult } from '../../engine/dlq.js';
import { ConfigError } from '../../errors.js';
import { createContext, print, type CommonOptions } from '../context.js';

interface DlqCommandOptions extends CommonOptions {
  readonly since?: string;
  readonly limit?: string;
}

function dlqOptions(options: DlqCommandOptions): DlqOptions {
  const limit = options.limit === undefined ? 200_000 : Number(options.limit);
  if (!Number.isInteger(limit) || limit <= 0) throw new ConfigError(`--limit ${options.limit}: expected a positive whole number`);
  if (options.since === undefined) return { limit };
  const ago = parseDuration(options.since);
  const since = ago !== undefined ? new Date(Date.now() - ago) : new Date(options.since);
  if (Number.isNaN(since.getTime())) throw new ConfigError(`--since ${options.since}: expected a duration (24h) or an ISO time`);
  return { since, limit };
}

function formatReport(report: DlqReport): string {
  const lines = [`ring ${report.ring}: ${report.letters.length} signature-invalid dead letters (${report.scanned} scanned${report.malformed ? `, ${report.malformed} unparseable` : ''}${report.truncated ? ', TRUNCATED: raise --limit' : ''})`];
  for (const group of report.groups) {
    lines.push(`  ${String(group.count).padStart(6)}  key ${group.keyId.padEnd(24)} ${group.errorClass.padEnd(16)} queue ${group.queue.padEnd(12)} verifies with ${group.verifiesWith}  newest ${group.newest ?? '?'}`);
  }
  return lines.join('\n');
}

export async function dlqInspectCommand(ring: string, options: DlqCommandOptions): Promise<void> {
  const settings = dlqOptions(options);
  const { inspectDeadLetters } = await import('../../engine/dlq.js');
  const context = await createContext(options);
  const report = await inspectDeadLetters(context.engine(ring), settings);
  print(options, report, () => formatReport(report));
}

function formatReplay(result: ReplayResult): string {
  const verb = result.dryRun ? 'would re-sign and re-enqueue' : 're-signed and re-enqueued';
  return [
    `ring ${result.ring}: ${verb} ${result.replayed.length} dead letters with "${result.activeKeyId}"; skipped ${result.skipped.length}${result.dryRun ? ' (dry run: nothing written)' : ''}`,
    ...result.replayed.map((letter) => `  replay ${letter.id} (${letter.task}) → ${letter.stream}; original verifies with ${letter.verifiesWith.join(',')}`),
    ...result.skipped.map((letter) => `  skip   ${letter.id} (${letter.task}): ${letter.why}`),
  ].join('\n');
}

export async function dlqReplayCommand(ring: string, options: DlqCommandOptions & { readonly resign?: boolean; readonly dryRun?: boolean; readonly yes?: boolean }): Promise<void> {
  if (!options.resign) throw new ConfigError('dlq replay needs --resign: a replayed signature-invalid envelope that is not re-signed fails again');
  if (!options.dryRun && !options.yes) throw new ConfigError('dlq replay re-enqueues tasks: preview with --dry-run, then confirm with --yes');
  const settings = dlqOptions(options);
  const { replayDeadLetters } = await import('../../engine/dlq.js');
  const context = await createContext(options);
  const result = await replayDeadLetters(context.engine(ring), { ...settings, dryRun: options.dryRun ?? false });
  print(options, result, () => formatReplay(result));
}

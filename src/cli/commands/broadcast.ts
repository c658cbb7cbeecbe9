import type { BroadcastResignResult } from '../../engine/broadcast.js';
import { ConfigError } from '../../errors.js';
import { createContext, print, type CommonOptions } from '../context.js';

function formatResign(result: BroadcastResignResult): string {
  const resigned = result.entries.filter((entry) => entry.action === 'resign');
  const removed = result.entries.filter((entry) => entry.action === 'remove');
  const verb = result.dryRun ? 'would re-sign' : 're-signed';
  return [
    `ring ${result.ring}, channel ${result.channel} (${result.stream}): ${verb} ${resigned.length} broadcasts with "${result.activeKeyId}", ${result.dryRun ? 'would remove' : 'removed'} ${removed.length} already consumed; skipped ${result.skipped.length}${result.dryRun ? ' (dry run: nothing written; confirm with --yes)' : ''}`,
    ...resigned.map((entry) => `  resign ${entry.entryId} (${entry.id}, key ${entry.keyId}) → ${entry.newEntryId ?? 'a new entry'}: ${entry.why}`),
    ...removed.map((entry) => `  remove ${entry.entryId} (${entry.id}, key ${entry.keyId}): ${entry.why}`),
    ...result.skipped.map((entry) => `  skip   ${entry.entryId} (${entry.id}, key ${entry.keyId}): ${entry.why}`),
  ].join('\n');
}

export async function broadcastResignCommand(ring: string, channel: string, options: CommonOptions & { readonly dryRun?: boolean; readonly yes?: boolean; readonly keepHistory?: boolean }): Promise<void> {
  if (!options.dryRun && !options.yes) throw new ConfigError(`broadcast resign rewrites channel "${channel}": preview with \`stem-rotor broadcast resign ${ring} ${channel} --dry-run\`, then confirm with --yes`);
  const { resignBroadcasts } = await import('../../engine/broadcast.js');
  const context = await createContext(options);
  const result = await resignBroadcasts(context.engine(ring), channel, { dryRun: options.dryRun ?? false, keepHistory: options.keepHistory ?? false });
  print(options, result, () => formatResign(result));
}

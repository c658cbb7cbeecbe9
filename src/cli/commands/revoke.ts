import { ConfigError } from '../../errors.js';
import { createContext, print, type CommonOptions } from '../context.js';
import { createLog } from '../log.js';
import { formatStep } from './format.js';

export interface RevokeOptions extends CommonOptions {
  readonly reason?: string;
  readonly yes?: boolean;
  readonly dryRun?: boolean;
}

export async function revokeCommand(ring: string, keyId: string, options: RevokeOptions): Promise<void> {
  const reason = options.reason?.trim();
  if (!reason) throw new ConfigError('revoke needs --reason TEXT (it is audited)');
  if (!options.yes && !options.dryRun) throw new ConfigError('revoke skips every gate: confirm with --yes, or preview with --dry-run');
  const context = await createContext(options, await createLog());
  const result = await context.engine(ring).revoke(keyId, { reason, dryRun: options.dryRun ?? false });
  const active = result.transition?.desired.activeKeyId;
  const followUp = options.dryRun
    ? []
    : [
        'what follows:',
        `  - restart every Stem process of ring "${ring}" (producers, workers, Beat, dashboard): they read keys only at start`,
        `  - envelopes still signed with "${keyId}" will dead-letter as \`unknown signing key "${keyId}"\` once their verifier restarts`,
        `  - new envelopes are signed with "${active}"; inspect dead letters with \`stem-rotor dlq inspect ${ring}\`; re-sign only those that verify under a still-trusted key`,
      ];
  print(options, { ...result, followUp }, () => [formatStep(result), ...followUp].join('\n'));
}

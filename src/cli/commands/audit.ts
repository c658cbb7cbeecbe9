import { findRing } from '../../config/load.js';
import { createContext, print, type CommonOptions } from '../context.js';

/** Lists the trail (torn records are reported on stderr and skipped); `--verify` walks the hash chain: exit 1 at a break. */
export async function auditCommand(ring: string | undefined, options: CommonOptions & { readonly verify?: boolean }): Promise<number> {
  const context = await createContext(options);
  if (options.verify) {
    const report = await context.store.verifyAudit();
    print(options, report, () =>
      [
        `${report.records} records checked${report.unchained ? ` (${report.unchained} from before the chain began)` : ''}`,
        ...report.torn.map((torn) => `warning: ${torn.at}: ${torn.problem} (a crash mid-append; later records chain over it)`),
        report.firstBreak ? `BROKEN at ${report.firstBreak.at}: ${report.firstBreak.problem}` : 'chain intact',
      ].join('\n'),
    );
    return report.firstBreak ? 1 : 0;
  }
  if (ring !== undefined) findRing(context.config, ring); // an unknown ring is a usage error, not an empty trail
  const { events, problems } = await context.store.readAudit(ring);
  for (const problem of problems) process.stderr.write(`stem-rotor: warning: ${problem.at}: ${problem.problem}\n`);
  print(options, events, () =>
    events.map((event) => `${event.time} ${event.ring} ${event.actor.user}@${event.actor.host} ${event.action} ${event.outcome}${event.details ? ` ${JSON.stringify(event.details)}` : ''}`).join('\n') || '(no audit events)',
  );
  return 0;
}

import { checkRing } from '../../engine/check.js';
import type { Config } from '../../config/load.js';
import { ExitCode } from '../../errors.js';
import type { AuditEvent } from '../../store/types.js';
import { createContext, print, type CommonOptions } from '../context.js';

export async function checkCommand(ring: string | undefined, options: CommonOptions): Promise<number> {
  const context = await createContext(options);
  const names = ring === undefined ? context.config.rings.map((r) => r.name) : [ring];
  const reports = await Promise.all(
    names.map(async (name) => {
      const engine = context.engine(name);
      return checkRing(engine, await engine.targets());
    }),
  );
  const warnings = context.config.warnings.filter((warning) => names.includes(warning.ring));
  const notify = notifySinks(context.config.notify, (await context.store.readAudit()).events, new Date());
  print(options, { config: context.config.path, warnings, notify, rings: reports }, () =>
    [
      `config ${context.config.path}: valid${warnings.length > 0 ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : ''}`,
      ...warnings.map((warning) => `  warning ${warning.rule}: ${warning.path} ${warning.message}`),
      ...notify.map((sink) => `notify ${sink.name} (${sink.describe}): ${sink.problem ?? 'configured'}${sink.failures > 0 ? `; ${sink.failures} failed deliveries in the last 24h, last: ${sink.lastError}` : ''}`),
      ...reports.flatMap((report) => [
        `ring ${report.ring}: ${report.ok ? 'ok' : 'PROBLEMS'}`,
        ...report.signals.map((signal) => `  ${signal.signal}: ${signal.ok ? 'ok' : 'UNREACHABLE'} (${signal.detail})`),
        ...report.targets.flatMap((target) => [
          `  ${target.name} ${target.location}: ${target.error ? `ERROR ${target.error}` : 'ok'}`,
          ...target.findings.map((finding) => `    ${finding.severity} ${finding.code} ${finding.variable}: ${finding.message}`),
        ]),
        ...report.residue.map((path) => `  warning: temp file ${path} left by a crashed writer (it may hold keys); the next rotate/run on this ring removes it`),
        `  agreement: ${report.agreement}`,
      ]),
    ].join('\n'),
  );
  return Math.max(notify.some((sink) => sink.problem) ? ExitCode.failure : 0, ...reports.map((report) => report.exitCode));
}

interface SinkReport {
  readonly name: string;
  readonly describe: string;
  /** A sink that cannot deliver as configured (its variable is not set). */
  readonly problem: string | null;
  readonly failures: number;
  readonly lastError: string | null;
}

/** Each notification sink: whether it can deliver as configured, and its failed deliveries from the audit trail. */
function notifySinks(sinks: Config['notify'], events: readonly AuditEvent[], now: Date): SinkReport[] {
  const since = now.getTime() - 86_400_000;
  return sinks.map((sink) => {
    const { name } = sink;
    const variable = sink.type === 'webhook' ? sink.secretEnv : sink.type === 'slack' ? sink.urlEnv : null;
    const describe = sink.type === 'webhook' ? `webhook ${new URL(sink.url).origin}` : sink.type === 'slack' ? `slack via $${sink.urlEnv}` : `exec ${sink.command[0]}`;
    const failed = events.filter((event) => event.action === 'notify' && event.outcome === 'failed' && event.details?.sink === name && Date.parse(event.time) >= since);
    return {
      name,
      describe,
      problem: variable && !process.env[variable] ? `$${variable} is not set: nothing can be delivered` : null,
      failures: failed.length,
      lastError: failed.length > 0 ? String(failed.at(-1)?.details?.error) : null,
    };
  });
}

import { checkRing } from '../../engine/check.js';
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
  print(options, { config: context.config.path, warnings, rings: reports }, () =>
    [
      `config ${context.config.path}: valid${warnings.length > 0 ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : ''}`,
      ...warnings.map((warning) => `  warning ${warning.rule}: ${warning.path} ${warning.message}`),
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
  return Math.max(0, ...reports.map((report) => report.exitCode));
}

import { decodeEnvFile, dialectFindings, parseEnvFile, type Dialect } from '../../envfile/codec.js';
import { readRegularFile } from '../../files/regular.js';
import { LINT_CODES, lintSigningEnv, type LintFinding } from '../../stem/lint.js';
import { STEM_ENV_NAMES, type SigningEnv, type StemEnvName } from '../../stem/signing-env.js';
import { print, type CommonOptions } from '../context.js';

/**
 * Lints the STEM_SIGNING_* lines as the file's reader (`--dialect`) sees them, plus any line that
 * reader would see differently than it was written (SR010). Exit 0 without error-level findings, 1 with.
 */
export async function lintCommand(options: CommonOptions & { readonly envFile: string; readonly dialect?: Dialect }): Promise<number> {
  const dialect = options.dialect ?? 'dotenv';
  const assignments = parseEnvFile(decodeEnvFile(readRegularFile(options.envFile, '--env-file').content), STEM_ENV_NAMES, dialect, options.envFile);
  const env: SigningEnv = {};
  for (const [name, assignment] of assignments) env[name as StemEnvName] = assignment.value;
  const findings: LintFinding[] = [
    ...dialectFindings(assignments, dialect).map((finding) => ({ code: LINT_CODES.readerSeesOtherValue, severity: 'error' as const, variable: finding.variable as StemEnvName, message: `line ${finding.line}: ${finding.message}` })),
    ...lintSigningEnv(env),
  ];
  const errors = findings.filter((finding) => finding.severity === 'error').length;
  print(options, { file: options.envFile, dialect, ok: errors === 0, findings }, () =>
    findings.length === 0
      ? `${options.envFile}: no findings`
      : findings.map((f) => `${options.envFile}: ${f.severity} ${f.code} ${f.variable}: ${f.message}`).join('\n'),
  );
  return errors === 0 ? 0 : 1;
}

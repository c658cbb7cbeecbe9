import { decodeEnvFile, dialectFindings, parseEnvFile, type Dialect } from '../../envfile/codec.js';
import { readRegularFile } from '../../files/regular.js';
import { LINT_CODES, lintSigningEnv, type LintFinding } from '../../stem/lint.js';
import { STEM_ENV_NAMES, type SigningEnv, type StemEnvName } from '../../stem/signing-env.js';
import { ConfigError } from '../../errors.js';
import { print, type CommonOptions } from '../context.js';

/**
 * Lints the STEM_SIGNING_* lines as the file's reader (`--dialect`) sees them, plus any line that
 * reader would see differently than it was written (SR010). Exit 0 without error-level findings, 1 with.
 */
export async function lintCommand(argument: string | undefined, options: CommonOptions & { readonly file?: string; readonly dialect?: Dialect }): Promise<number> {
  const file = argument ?? options.file;
  if (file === undefined) throw new ConfigError('lint needs the env file: stem-rotor lint FILE (or --file FILE)');
  if (argument !== undefined && options.file !== undefined && argument !== options.file) throw new ConfigError(`lint: two files given (${argument} and --file ${options.file}); give one`);
  const dialect = options.dialect ?? 'dotenv';
  const assignments = parseEnvFile(decodeEnvFile(readRegularFile(file, 'lint').content), STEM_ENV_NAMES, dialect, file);
  const env: SigningEnv = {};
  for (const [name, assignment] of assignments) env[name as StemEnvName] = assignment.value;
  const findings: LintFinding[] = [
    ...dialectFindings(assignments, dialect).map((finding) => ({ code: LINT_CODES.readerSeesOtherValue, severity: 'error' as const, variable: finding.variable as StemEnvName, message: `line ${finding.line}: ${finding.message}` })),
    ...lintSigningEnv(env),
  ];
  const errors = findings.filter((finding) => finding.severity === 'error').length;
  print(options, { file, dialect, ok: errors === 0, findings }, () =>
    findings.length === 0 ? `${file}: no findings` : findings.map((f) => `${file}: ${f.severity} ${f.code} ${f.variable}: ${f.message}`).join('\n'),
  );
  return errors === 0 ? 0 : 1;
}

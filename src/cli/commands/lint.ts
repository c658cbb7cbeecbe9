import { lintSigningEnv } from '../../stem/lint.js';
import { print, type CommonOptions } from '../context.js';
import { readEnvFile } from '../env-file.js';

/** Exit 0 without error-level findings, 1 with. */
export async function lintCommand(options: CommonOptions & { readonly envFile: string }): Promise<number> {
  const findings = lintSigningEnv(readEnvFile(options.envFile));
  const errors = findings.filter((finding) => finding.severity === 'error').length;
  print(options, { file: options.envFile, ok: errors === 0, findings }, () =>
    findings.length === 0
      ? `${options.envFile}: no findings`
      : findings.map((f) => `${options.envFile}: ${f.severity} ${f.code} ${f.variable}: ${f.message}`).join('\n'),
  );
  return errors === 0 ? 0 : 1;
}

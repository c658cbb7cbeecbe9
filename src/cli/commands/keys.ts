import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { ConfigError, ExitCode, asIoError } from '../../errors.js';
import { generateKey, generateKeyId, keyIdProblem } from '../../stem/keys.js';
import { STEM_ENV, formatKeyList, type Algorithm } from '../../stem/signing-env.js';

export interface KeysGenerateOptions {
  readonly algorithm?: string;
  readonly id?: string;
  readonly out?: string;
  readonly json?: boolean;
}

/** The lines a fresh Stem config needs; this is the one command whose job is to print key material. */
export async function keysGenerateCommand(options: KeysGenerateOptions): Promise<void> {
  const algorithm = (options.algorithm ?? 'hmac-sha256').toLowerCase();
  if (algorithm !== 'hmac-sha256' && algorithm !== 'ed25519') throw new ConfigError(`--algorithm ${options.algorithm}: expected hmac-sha256 or ed25519`);
  const id = options.id ?? generateKeyId('key-', new Date(), randomBytes);
  const problem = keyIdProblem(id);
  if (problem) throw new ConfigError(`--id "${id}": a key id ${problem}`);
  const key = generateKey(algorithm as Algorithm, id, randomBytes);
  const secret = key.secret as Buffer;
  const lines =
    algorithm === 'hmac-sha256'
      ? [`${STEM_ENV.algorithm}=hmac-sha256`, `${STEM_ENV.keys}=${formatKeyList([{ id, material: secret }])}`, `${STEM_ENV.activeKey}=${id}`]
      : [
          `${STEM_ENV.algorithm}=ed25519`,
          `${STEM_ENV.publicKeys}=${formatKeyList([{ id, material: key.publicKey as Buffer }])}`,
          `${STEM_ENV.privateKeys}=${formatKeyList([{ id, material: secret }])}`,
          `${STEM_ENV.activeKey}=${id}`,
        ];
  const text = options.json
    ? `${JSON.stringify(Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])), null, 2)}\n`
    : `${lines.join('\n')}\n`;
  if (options.out) {
    try {
      writeFileSync(options.out, text, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      const exists = (error as NodeJS.ErrnoException).code === 'EEXIST';
      throw asIoError(error, 'create', options.out, exists ? { exitCode: ExitCode.usage, hint: '--out never overwrites; choose a new file' } : {});
    }
    process.stderr.write(`wrote ${options.out} (mode 0600)\n`);
  } else {
    process.stdout.write(text);
  }
}

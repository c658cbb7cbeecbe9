import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SCHEMA_FILE, configJsonSchema } from '../../config/json-schema.js';
import { ConfigError } from '../../errors.js';
import { generateKey, generateKeyId } from '../../stem/keys.js';
import { formatKeyList } from '../../stem/signing-env.js';

const CONFIG = `# yaml-language-server: $schema=./${SCHEMA_FILE}
# stem-rotor local example: ring "demo" rotates the HMAC key that two groups of Stem
# processes read from .env files. Soak windows are short so the demo finishes quickly;
# production wants propagate >= 10m and drain > your longest retry/delay horizon.
version: 1
store:
  type: file
  dir: state
rings:
  demo:
    algorithm: hmac-sha256
    keyIdPrefix: demo-
    policy:
      maxAge: 30d
      propagate: 3s
      drain: 3s
      autoAdvance: true
    gates:
      beforeActivate:
        - type: soak
      beforeDrop:
        - type: soak
    targets:
      - name: producers
        provider: dotenv
        path: producers.env
      - name: workers
        provider: dotenv
        path: workers.env
`;

function envFile(role: string, keysLine: string, activeId: string): string {
  return `# Stem ${role} environment (example). stem-rotor manages only the STEM_SIGNING_* lines.
STEM_BROKER_URL=redis://127.0.0.1:6379/0
STEM_RESULT_BACKEND_URL=redis://127.0.0.1:6379/1
STEM_SIGNING_ALGORITHM=hmac-sha256
STEM_SIGNING_KEYS=${keysLine}
STEM_SIGNING_ACTIVE_KEY=${activeId}
`;
}

export async function initCommand(options: { readonly dir: string; readonly force?: boolean; readonly json?: boolean }): Promise<void> {
  const dir = resolve(options.dir);
  const files = { config: join(dir, 'stem-rotor.yaml'), producers: join(dir, 'producers.env'), workers: join(dir, 'workers.env') };
  const existing = Object.values(files).filter((file) => existsSync(file));
  if (existing.length > 0 && !options.force) throw new ConfigError(`init: ${existing.join(', ')} already exist (use --force to overwrite)`);
  mkdirSync(dir, { recursive: true });
  const id = generateKeyId('demo-', new Date(), randomBytes);
  const key = generateKey('hmac-sha256', id, randomBytes);
  const keysLine = formatKeyList([{ id, material: key.secret as Buffer }]);
  writeFileSync(files.config, CONFIG, { mode: 0o644 });
  // editors validate and complete the config with it; `stem-rotor config schema` prints the same
  writeFileSync(join(dir, SCHEMA_FILE), `${JSON.stringify(configJsonSchema(), null, 2)}\n`, { mode: 0o644 });
  writeFileSync(files.producers, envFile('producer', keysLine, id), { mode: 0o600 });
  writeFileSync(files.workers, envFile('worker', keysLine, id), { mode: 0o600 });
  const next = `stem-rotor status demo --config ${files.config}`;
  process.stdout.write(options.json ? `${JSON.stringify({ files, activeKeyId: id, next }, null, 2)}\n` : `wrote ${files.config}, ${files.producers}, ${files.workers}\nactive key ${id}\nnext: ${next}\n`);
}

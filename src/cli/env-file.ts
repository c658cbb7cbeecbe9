/** Reads the Stem signing variables out of a .env file given on the command line. */
import { readFileSync } from 'node:fs';
import { parseDotenv } from '../../providers/dotenv.js';
import { ConfigError } from '../errors.js';
import { STEM_ENV_NAMES, type SigningEnv } from '../stem/signing-env.js';

export function readEnvFile(path: string): SigningEnv {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`--env-file ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message}`);
  }
  const env: SigningEnv = {};
  for (const [name, assignment] of parseDotenv(content, STEM_ENV_NAMES, path)) env[name as keyof SigningEnv] = assignment.value;
  return env;
}

export function readInput(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new ConfigError(`--in ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message}`);
  }
}

/** Reads the Stem signing variables out of a .env file given on the command line. */
import { readFileSync } from 'node:fs';
import { signingEnvOf } from '../envfile/codec.js';
import { ConfigError } from '../errors.js';
import { readRegularFile } from '../files/regular.js';
import type { SigningEnv } from '../stem/signing-env.js';

export function readEnvFile(path: string): SigningEnv {
  return signingEnvOf(readRegularFile(path, '--file').content, path);
}

export function readInput(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new ConfigError(`--in ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message}`);
  }
}

/**
 * Loads an optional library (a provider's SDK, a signer) on first use. CommonJS packages reach ESM (and the bundle) as a namespace
 * whose `default` is `module.exports`; `probe` names an export that tells which shape arrived.
 */
import { ConfigError } from './errors.js';

export async function importLib<T>(name: string, load: () => Promise<unknown>, probe: string): Promise<T> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await load()) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`this needs the "${name}" package (npm install ${name}): ${(error as Error).message}`);
  }
  return (probe in namespace ? namespace : namespace.default) as T;
}

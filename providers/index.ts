/** Provider registry: the config's `provider` key → a lazily imported factory, so unused SDKs never load. */
import type { TargetConfig } from '../src/config/schema.js';
import type { Provider } from './types.js';

export type { Provider, TargetSnapshot, WriteRequest } from './types.js';

export async function createProvider(target: TargetConfig): Promise<Provider> {
  switch (target.provider) {
    case 'dotenv': {
      const { default: createDotenvProvider } = await import('./dotenv.js');
      return createDotenvProvider({ target: target.name, path: target.path });
    }
  }
}

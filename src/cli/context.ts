/** What every ring command needs: the config, the store, an engine per ring. */
import { systemClock } from '../clock.js';
import { defaultConfigFile, findRing, loadConfig, type Config } from '../config/load.js';
import { RingEngine, currentActor, type Actor } from '../engine/engine.js';
import { createFileStore } from '../store/file.js';
import type { StateStore } from '../store/types.js';
import type { Log } from './log.js';
import { openStores } from './open-stores.js';

export interface CommonOptions {
  readonly config?: string;
  readonly json?: boolean;
}

export interface Context {
  readonly config: Config;
  readonly store: StateStore;
  /** `actor`: who acts, when not the OS user (`--as`). */
  engine(ring: string, actor?: Actor): RingEngine;
  /** Ends this context's store connection. */
  close(): Promise<void>;
}

export function configPath(options: CommonOptions): string {
  return options.config ?? process.env.STEM_ROTOR_CONFIG ?? defaultConfigFile();
}


async function openStore(config: Config): Promise<StateStore> {
  if (config.store.type === 'file') return createFileStore({ dir: config.store.dir, clock: systemClock });
  const { createRedisStore } = await import('../store/redis.js');
  return createRedisStore({ endpoint: config.store, prefix: config.store.prefix, clock: systemClock });
}

export async function createContext(options: CommonOptions, log?: Log): Promise<Context> {
  const config = await loadConfig(configPath(options));
  const store = await openStore(config);
  openStores.push(store);
  const progress = log ? (line: string) => log.info(line) : undefined;
  const notify = config.notify.length > 0 ? (await import('../notify/index.js')).createNotifier(config.notify) : undefined;
  // `run` builds an engine per ring: look rings up by name and ask the OS who we are once, not per ring
  const rings = new Map(config.rings.map((ring) => [ring.name, ring]));
  const self = currentActor();
  return {
    config,
    store,
    engine: (ring, actor) => new RingEngine(rings.get(ring) ?? findRing(config, ring), { store, clock: systemClock, leaseTtlMs: config.store.leaseTtl, actor: actor ?? self, ...(progress ? { progress } : {}), ...(notify ? { notify } : {}) }),
    close: async () => {
      openStores.splice(openStores.indexOf(store), 1);
      await store.close();
    },
  };
}

export function print(options: CommonOptions, value: unknown, human: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

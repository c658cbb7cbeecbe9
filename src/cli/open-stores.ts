/**
 * The store connections a command opened, closed by the CLI once at exit. A module of its own so
 * that `--version` and `--help` close nothing without loading the context and all it imports.
 */
import type { StateStore } from '../store/types.js';

export const openStores: StateStore[] = [];

export async function closeOpenStores(): Promise<void> {
  await Promise.allSettled(openStores.splice(0).map((store) => store.close()));
}

#!/usr/bin/env -S node --
/**
 * The `stem-rotor` entry point. (`node --`: Node 20 takes `--env-file` anywhere on its command line
 * for itself — loading that file into the environment, or dying on a missing one — unless its own
 * options end first.)
 *
 * Node ≥ 22.1 can keep V8's compiled code between runs (in the OS temp directory; a cache it
 * cannot write is skipped): turned on before anything else loads, it saves most of the compile
 * time of every start after the first. Node 20 has no such cache and starts as before.
 */
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import('./main.js');

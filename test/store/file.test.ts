/** What only the file store does (the shared behaviour is in contract.test.ts). */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileStore } from '../../src/store/file.js';
import { SimulatedClock } from '../helpers/clock.js';
import { tempDir } from '../helpers/fs.js';
import { sampleState } from './contract.js';

function setup() {
  const dir = tempDir();
  return { dir, store: createFileStore({ dir, clock: new SimulatedClock() }) };
}

describe('file store', () => {
  it('writes state with mode 0600 and audit as JSON lines', async () => {
    const { dir, store } = setup();
    const lease = await store.acquire('ring', { owner: 'me', token: 't1', ttlMs: 1000 });
    await store.save(sampleState, lease);
    expect(statSync(join(dir, 'rings', 'ring.json')).mode & 0o777).toBe(0o600);
    await store.appendAudit({ time: 't1', ring: 'a', actor: { user: 'u', host: 'h' }, action: 'start', outcome: 'ok' });
    expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('a corrupt state file is a clear error', async () => {
    const { dir, store } = setup();
    const lease = await store.acquire('ring', { owner: 'me', token: 't', ttlMs: 1000 });
    await store.save(sampleState, lease);
    writeFileSync(join(dir, 'rings', 'ring.json'), '{oops');
    await expect(store.load('ring')).rejects.toThrow(/corrupt/);
  });
});

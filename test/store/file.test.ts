/** What only the file store does (the shared behaviour is in contract.test.ts). */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
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

describe('file store on a real disk', () => {
  it('a torn last audit line is reported and skipped; the next event starts on its own line and chains over it', async () => {
    const { dir, store } = setup();
    const actor = { user: 'u', host: 'h' };
    await store.appendAudit({ time: 't1', ring: 'a', actor, action: 'start', outcome: 'ok' });
    appendFileSync(join(dir, 'audit.jsonl'), '{"time":"t2","ring":"a","act'); // SIGKILL mid-append
    await store.appendAudit({ time: 't3', ring: 'a', actor, action: 'advance', outcome: 'ok' });
    await store.appendAudit({ time: 't4', ring: 'a', actor, action: 'advance', outcome: 'ok' });
    const read = await store.readAudit('a');
    expect(read.events.map((event) => event.time)).toEqual(['t1', 't3', 't4']);
    expect(read.problems).toEqual([{ at: `${join(dir, 'audit.jsonl')} line 2`, problem: 'torn or unreadable record (skipped)' }]);
    expect(await store.verifyAudit()).toMatchObject({ records: 4, firstBreak: null, torn: [{ at: `${join(dir, 'audit.jsonl')} line 2` }] });
  });

  it('an edited audit line breaks the chain at the next record; records written before the chain existed are counted, not failed', async () => {
    const { dir, store } = setup();
    const path = join(dir, 'audit.jsonl');
    writeFileSync(path, '{"time":"t0","ring":"a","actor":{"user":"u","host":"h"},"action":"start","outcome":"ok"}\n');
    const actor = { user: 'u', host: 'h' };
    for (const time of ['t1', 't2', 't3']) await store.appendAudit({ time, ring: 'a', actor, action: 'start', outcome: 'ok' });
    expect(await store.verifyAudit()).toMatchObject({ records: 4, unchained: 1, firstBreak: null });
    writeFileSync(path, readFileSync(path, 'utf8').replace('"time":"t2"', '"time":"t9"'));
    expect((await store.verifyAudit()).firstBreak).toEqual({ at: `${path} line 4`, problem: expect.stringMatching(/changed or removed/) });
  });

  it('a state write that fails leaves no temp file; temp files of dead writers go when the lease is taken', async () => {
    const { dir, store } = setup();
    const lease = await store.acquire('ring', { owner: 'me', token: 't1', ttlMs: 1000 });
    await store.save(sampleState, lease);
    writeFileSync(join(dir, 'rings', 'ring.json.424242.tmp'), '{}'); // stem-rotor 0.1's name
    writeFileSync(join(dir, 'rings', '.ring.json.stem-rotor-424243-00ff00ff.tmp'), '{}');
    expect(await store.residue('ring')).toHaveLength(2);
    await store.release(lease);
    await store.acquire('ring', { owner: 'me', token: 't2', ttlMs: 1000 });
    expect(await store.residue('ring')).toEqual([]);
    expect(readdirSync(join(dir, 'rings')).sort()).toEqual(['ring.json', 'ring.lease']);
  });

  it('a store mutex left by a dead process is broken at once and audited', async () => {
    const { dir, store } = setup();
    mkdirSync(join(dir, 'rings'), { recursive: true });
    writeFileSync(join(dir, 'rings', 'ring.lease.mutex'), JSON.stringify({ pid: 999_999, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    await store.acquire('ring', { owner: 'me', token: 't1', ttlMs: 1000 });
    const { events } = await store.readAudit('ring');
    expect(events).toEqual([expect.objectContaining({ action: 'break-lock', details: expect.objectContaining({ why: 'holder process is gone', holder: expect.objectContaining({ pid: 999_999 }) }) })]);
  });
});

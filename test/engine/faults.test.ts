/** Concurrent writers, transient faults and partial fan-out failures against real dotenv targets. */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Provider } from '../../providers/types.js';
import type { TargetConfig } from '../../src/config/schema.js';
import { PartialFailureError } from '../../src/errors.js';
import { createHarness, dotenvFor } from '../helpers/ring.js';

type Fault = (target: string, attempt: number) => void | Promise<void>;

/** Real dotenv providers with a hook that runs just before each write reaches the file. */
function withFault(fault: Fault): (target: TargetConfig) => Promise<Provider> {
  const attempts = new Map<string, number>();
  return async (target) => {
    const real = dotenvFor(target);
    return {
      providerName: real.providerName,
      location: real.location,
      read: (fields) => real.read(fields),
      async write(request) {
        const attempt = (attempts.get(target.name) ?? 0) + 1;
        attempts.set(target.name, attempt);
        await fault(target.name, attempt);
        return real.write(request);
      },
    };
  };
}

/** Real dotenv providers that count each target's reads and writes. */
function counting(): { providerFor: (target: TargetConfig) => Promise<Provider>; reads: Map<string, number>; writes: Map<string, number> } {
  const reads = new Map<string, number>();
  const writes = new Map<string, number>();
  const bump = (counts: Map<string, number>, target: string) => counts.set(target, (counts.get(target) ?? 0) + 1);
  return {
    reads,
    writes,
    providerFor: async (target) => {
      const real = dotenvFor(target);
      return {
        providerName: real.providerName,
        location: real.location,
        read: (fields) => (bump(reads, target.name), real.read(fields)),
        write: (request) => (bump(writes, target.name), real.write(request)),
      };
    },
  };
}

describe('compare-and-set against concurrent writers', () => {
  it('a harmless concurrent edit is detected, re-read, re-validated and then written over — never blindly', async () => {
    const h = createHarness();
    const engine = h.engine({
      providerFor: withFault((target, attempt) => {
        if (target === 'workers' && attempt === 1) appendFileSync(h.path('workers'), 'ADDED_BY_SOMEONE_ELSE=1\n');
      }),
    });
    const result = await engine.start();
    expect(result.phase).toBe('added');
    const content = readFileSync(h.path('workers'), 'utf8');
    expect(content).toContain('ADDED_BY_SOMEONE_ELSE=1');
    expect(content).toContain(`,${result.newKey?.id}:`);
    expect(h.progress.some((line) => line.includes('changed concurrently; re-reading and re-validating'))).toBe(true);
  });

  it('a concurrent change of the keys themselves is refused after the re-read', async () => {
    const h = createHarness();
    const foreign = createHarness({ seed: 'someone-else' });
    const engine = h.engine({
      providerFor: withFault((target, attempt) => {
        if (target === 'workers' && attempt === 1) writeFileSync(h.path('workers'), readFileSync(foreign.path('workers')));
      }),
    });
    // producers was already written: a partial result (exit 5), the refusal named for workers
    const error = await engine.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartialFailureError);
    expect((error as PartialFailureError).failures).toEqual([{ target: 'workers', error: expect.stringMatching(/^target "workers": key .* two different keys share one id$/) }]);
    expect(readFileSync(h.path('workers'))).toEqual(readFileSync(foreign.path('workers')));
  });
});

describe('revoke fan-out', () => {
  it('writes targets in parallel, retries transient faults, and reports a persistent failure target by target', async () => {
    const h = createHarness({ targets: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] });
    let healthy = false;
    const flaky = withFault((target, attempt) => {
      if (target === 'b' && attempt === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }); // a socket error a provider let through
      if (target === 'c' && !healthy) throw new Error('503 Service Unavailable');
    });
    const engine = h.engine({ providerFor: flaky });
    const error = await engine.revoke(h.initialKey.id, { reason: 'leak' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PartialFailureError);
    expect((error as PartialFailureError).failures).toEqual([{ target: 'c', error: '503 Service Unavailable' }]);
    expect((error as PartialFailureError).exitCode).toBe(5);
    expect(readFileSync(h.path('a'), 'utf8')).not.toContain(`${h.initialKey.id}:`);
    expect(readFileSync(h.path('b'), 'utf8')).not.toContain(`${h.initialKey.id}:`);
    expect(readFileSync(h.path('c'), 'utf8')).toContain(`${h.initialKey.id}:`);
    const status = await h.engine().status();
    expect(status.transition?.writes).toEqual(expect.arrayContaining([expect.objectContaining({ target: 'c', status: 'failed' })]));

    healthy = true;
    const rerun = await h.engine({ providerFor: flaky }).advance();
    expect(rerun.outcome).toBe('resumed');
    for (const target of ['a', 'b', 'c']) expect(readFileSync(h.path(target), 'utf8')).not.toContain(`${h.initialKey.id}:`);
    expect((await h.engine().status()).revokedKeyIds).toEqual([h.initialKey.id]);
  });

  it('a bug (a plain Error) is never retried as if it were transient; a socket error is, a bounded number of times', async () => {
    const h = createHarness({ targets: [{ name: 'a' }, { name: 'b' }] });
    const calls = new Map<string, number>();
    const faulty = withFault((target, attempt) => {
      calls.set(target, attempt);
      if (target === 'a') throw new TypeError("Cannot read properties of undefined (reading 'version')");
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    });
    const error = await h.engine({ providerFor: faulty }).revoke(h.initialKey.id, { reason: 'leak' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PartialFailureError);
    expect(calls.get('a')).toBe(1);
    expect(calls.get('b')).toBe(3);
  });

  it('re-running the same revoke after a partial failure also converges', async () => {
    const h = createHarness({ targets: [{ name: 'a' }, { name: 'b' }] });
    let healthy = false;
    const flaky = withFault((target) => {
      if (target === 'b' && !healthy) throw new Error('timeout');
    });
    await expect(h.engine({ providerFor: flaky }).revoke(h.initialKey.id, { reason: 'leak' })).rejects.toBeInstanceOf(PartialFailureError);
    healthy = true;
    await h.engine({ providerFor: flaky }).revoke(h.initialKey.id, { reason: 'leak, again' });
    const status = await h.engine().status();
    expect(status.phase).toBe('stable');
    expect(status.targets.every((target) => target.inSync)).toBe(true);
    expect(status.keys).toHaveLength(1);
  });
});

describe('reads before a write', () => {
  it('a revoke or a step reads each target once before writing it when nothing acted between its preflight and its lease', async () => {
    const h = createHarness({ targets: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] });
    const started = counting();
    await h.engine({ providerFor: started.providerFor }).start();
    // the preflight's read, then the read-back after the write
    expect(Object.fromEntries(started.reads)).toEqual({ a: 2, b: 2, c: 2 });
    const revoked = counting();
    await h.engine({ providerFor: revoked.providerFor }).revoke(h.initialKey.id, { reason: 'leak' });
    expect(Object.fromEntries(revoked.reads)).toEqual({ a: 2, b: 2, c: 2 });
    expect(Object.fromEntries(revoked.writes)).toEqual({ a: 1, b: 1, c: 1 });
    for (const target of ['a', 'b', 'c']) expect(readFileSync(h.path(target), 'utf8')).not.toContain(`${h.initialKey.id}:`);
  });

  it('a saved plan is checked against what the targets hold under the lease', async () => {
    const h = createHarness({ targets: [{ name: 'a' }, { name: 'b' }] });
    const { plan } = await h.engine().start({ dryRun: true });
    const counts = counting();
    const applied = await h.engine({ providerFor: counts.providerFor }).start({ ...(plan ? { plan } : {}) });
    expect(applied.phase).toBe('added');
    // the preflight's read, the read under the lease, the read-back
    expect(Object.fromEntries(counts.reads)).toEqual({ a: 3, b: 3 });
  });

  it('a command that acts between the preflight and the lease makes the revoke read every target again and plan on what it finds', async () => {
    const h = createHarness({ targets: [{ name: 'a' }, { name: 'b' }] });
    const store = h.deps().store;
    let interloped = false;
    const interloping = new Proxy(store, {
      get(target, property) {
        if (property === 'acquire') {
          return async (...args: Parameters<typeof store.acquire>) => {
            if (!interloped) {
              interloped = true;
              await h.engine().start(); // another command, after the revoke's preflight and before its lease
            }
            return store.acquire(...args);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const counts = counting();
    const result = await h.engine({ store: interloping, providerFor: counts.providerFor }).revoke(h.initialKey.id, { reason: 'leak' });
    expect(interloped).toBe(true);
    expect(Object.fromEntries(counts.reads)).toEqual({ a: 3, b: 3 });
    // planned on the targets as the start left them: no write met a target it did not expect
    expect(Object.fromEntries(counts.writes)).toEqual({ a: 1, b: 1 });
    expect(h.progress.some((line) => line.includes('changed concurrently'))).toBe(false);
    expect(result.transition?.from.keyIds).toHaveLength(2);
    for (const target of ['a', 'b']) expect(readFileSync(h.path(target), 'utf8')).not.toContain(`${h.initialKey.id}:`);
  });
});

/**
 * One behaviour suite for every provider (dotenv, Vault KV v2, Kubernetes Secret, AWS Secrets
 * Manager, and the in-memory reference): what the engine relies on, through each real client.
 */
import { describe, expect, it } from 'vitest';
import type { Provider } from '../../providers/types.js';
import { ConflictError } from '../../src/errors.js';

export const CONTRACT_FIELDS = ['STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY'];
/** What every target starts with: the two Stem fields and one field stem-rotor must never touch. */
export const SEED = { STEM_SIGNING_KEYS: 'k1:c2VjcmV0LW1hdGVyaWFsLW9uZQ==', STEM_SIGNING_ACTIVE_KEY: 'k1', UNRELATED: 'keep me' };

export interface ContractTarget {
  readonly provider: Provider;
  /** Every field the target holds now, read past the provider (the emulator's or the file's view). */
  all(): Promise<Record<string, string>>;
  /** A write by someone else, past the provider. */
  outside(set: Record<string, string>): Promise<void>;
}

/** `create` makes a fresh target holding SEED. */
export function providerContract(name: string, create: () => Promise<ContractTarget>): void {
  describe(`${name} provider contract`, () => {
    it('reads exactly the requested fields that exist, with a version; names its place without any secret', async () => {
      const { provider } = await create();
      const snapshot = await provider.read([...CONTRACT_FIELDS, 'STEM_SIGNING_ALGORITHM']);
      expect(snapshot.fields).toEqual({ STEM_SIGNING_KEYS: SEED.STEM_SIGNING_KEYS, STEM_SIGNING_ACTIVE_KEY: 'k1' });
      expect(snapshot.version).toMatch(/\S/);
      expect(provider.location).not.toContain('c2VjcmV0');
      expect(provider.providerName).toMatch(/\S/);
    });

    it('a write at the read version sets the given fields, keeps every other field, and returns the new version it reads back at', async () => {
      const target = await create();
      const before = await target.provider.read(CONTRACT_FIELDS);
      const written = await target.provider.write({ set: { STEM_SIGNING_KEYS: 'k1:c2VjcmV0LW1hdGVyaWFsLW9uZQ==,k2:dHdv', STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: before.version, idempotencyKey: 't1:contract' });
      expect(written.version).not.toBe(before.version);
      const after = await target.provider.read(CONTRACT_FIELDS);
      expect(after).toEqual({ fields: { STEM_SIGNING_KEYS: 'k1:c2VjcmV0LW1hdGVyaWFsLW9uZQ==,k2:dHdv', STEM_SIGNING_ACTIVE_KEY: 'k2' }, version: written.version });
      expect(await target.all()).toMatchObject({ UNRELATED: 'keep me' });
    });

    it('a write at a stale version is a ConflictError and changes nothing', async () => {
      const target = await create();
      const before = await target.provider.read(CONTRACT_FIELDS);
      await target.outside({ STEM_SIGNING_ACTIVE_KEY: 'k1', UNRELATED: 'changed by someone else' });
      const seen = await target.all();
      await expect(target.provider.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k9' }, expectedVersion: before.version, idempotencyKey: 't2:contract' })).rejects.toBeInstanceOf(ConflictError);
      expect(await target.all()).toEqual(seen);
    });

    it('declares its optional steps as methods, and an after-write step can run again', async () => {
      const { provider } = await create();
      for (const step of ['afterWrite', 'preflightWrite', 'residue', 'removeResidue'] as const) {
        expect(['undefined', 'function']).toContain(typeof provider[step]);
      }
      await provider.preflightWrite?.();
      // the engine re-runs a pending after-write step on resume: twice must be as good as once
      await provider.afterWrite?.();
      await provider.afterWrite?.();
    });
  });
}

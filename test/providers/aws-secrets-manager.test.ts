/** aws-secrets-manager through the real AWS SDK v3 client against the Secrets Manager emulator. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import createAwsSecretsManagerProvider, { STAGE_LABEL, type AwsSecretsManagerOptions } from '../../providers/aws-secrets-manager.js';
import { ConfigError, ConflictError } from '../../src/errors.js';
import { AwsSecretsManagerEmulator } from '../emulators/aws-secrets-manager.js';

let aws: AwsSecretsManagerEmulator;
const FIELDS = ['STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY'];
const noWait = { sleep: async () => undefined };

beforeAll(async () => {
  aws = await new AwsSecretsManagerEmulator().start();
  process.env.AWS_ACCESS_KEY_ID = 'AKIATEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
});
afterAll(() => aws.stop());
beforeEach(() => {
  aws.secrets.clear();
  aws.faults.length = 0;
  aws.calls.length = 0;
  aws.create('stem/billing', { STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1', DB_PASSWORD: 'keep' });
});

const provider = (options: Partial<AwsSecretsManagerOptions> = {}) =>
  createAwsSecretsManagerProvider({ target: 'aws', secretId: 'stem/billing', region: 'eu-west-1', endpoint: aws.endpoint, retry: noWait, ...options });
const write = (target: ReturnType<typeof provider>, expectedVersion: string, set: Record<string, string> = { STEM_SIGNING_ACTIVE_KEY: 'k2' }, key = 't1:aws') =>
  target.write({ set, expectedVersion, idempotencyKey: key });

describe('aws-secrets-manager provider', () => {
  it('reads AWSCURRENT; writes a complete JSON version with a deterministic token and moves AWSCURRENT to it', async () => {
    const target = provider();
    const before = aws.current('stem/billing')?.versionId;
    const snapshot = await target.read(FIELDS);
    expect(snapshot).toEqual({ fields: { STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1' }, version: `aws:${before}` });
    const written = await write(target, snapshot.version);
    const after = aws.current('stem/billing');
    expect(written.version).toBe(`aws:${after?.versionId}`);
    expect(after?.data).toEqual({ STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k2', DB_PASSWORD: 'keep' });
    const secret = aws.secrets.get('stem/billing');
    expect([...(secret?.versions.get(before as string)?.stages ?? [])]).toEqual(['AWSPREVIOUS']);
    expect([...(secret?.versions.get(after?.versionId as string)?.stages ?? [])].sort()).toEqual(['AWSCURRENT', STAGE_LABEL]);
    const put = aws.calls.find((call) => call.operation === 'PutSecretValue');
    expect(put?.body.VersionStages).toEqual([STAGE_LABEL]);
  });

  it('retrying after a failure between PutSecretValue and the stage move reuses the same version (token), not a new one', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    aws.faults.push(...Array.from({ length: 4 }, () => ({ kind: 'internal' as const, operation: 'UpdateSecretVersionStage' })));
    await expect(write(target, snapshot.version)).rejects.toThrow(/InternalServiceError/);
    expect(aws.current('stem/billing')?.data.STEM_SIGNING_ACTIVE_KEY).toBe('k1');
    const written = await write(provider(), snapshot.version);
    expect(aws.secrets.get('stem/billing')?.versions.size).toBe(2);
    const puts = aws.calls.filter((call) => call.operation === 'PutSecretValue').map((call) => call.body.ClientRequestToken);
    expect(puts).toHaveLength(2);
    expect(puts[0]).toBe(puts[1]);
    expect(written.version).toBe(`aws:${puts[0]}`);
    expect(aws.current('stem/billing')?.data.STEM_SIGNING_ACTIVE_KEY).toBe('k2');
  });

  it('a connection reset after PutSecretValue landed: the retry is idempotent (same token, same content)', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    aws.faults.push({ kind: 'reset-after', operation: 'PutSecretValue' });
    const written = await write(target, snapshot.version);
    expect(aws.secrets.get('stem/billing')?.versions.size).toBe(2);
    expect(written.version).toBe(`aws:${aws.current('stem/billing')?.versionId}`);
  });

  it('a concurrent writer that moved AWSCURRENT is detected; nothing of ours becomes current', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    aws.faults.push({ kind: 'concurrent-put', operation: 'UpdateSecretVersionStage', data: { STEM_SIGNING_KEYS: 'x:YQ==', STEM_SIGNING_ACTIVE_KEY: 'x' } });
    await expect(write(target, snapshot.version)).rejects.toBeInstanceOf(ConflictError);
    expect(aws.current('stem/billing')?.data.STEM_SIGNING_ACTIVE_KEY).toBe('x');
    await expect(write(provider(), snapshot.version)).rejects.toThrow(/AWSCURRENT of stem\/billing is/);
  });

  it('refuses a secret with AWS-managed rotation unless allowed, one scheduled for deletion, one that is not JSON', async () => {
    aws.create('rotating', { STEM_SIGNING_KEYS: 'k1:YQ==' }, { rotationEnabled: true });
    await expect(provider({ secretId: 'rotating' }).read(FIELDS)).rejects.toThrow(/AWS-managed rotation enabled/);
    expect((await provider({ secretId: 'rotating', allowManagedRotation: true }).read(FIELDS)).fields.STEM_SIGNING_KEYS).toBe('k1:YQ==');
    aws.create('deleting', {});
    (aws.secrets.get('deleting') as { deleted: boolean }).deleted = true;
    await expect(provider({ secretId: 'deleting' }).read(FIELDS)).rejects.toThrow(/scheduled for deletion/);
    aws.create('plain', {});
    const plain = aws.secrets.get('plain');
    for (const version of plain?.versions.values() ?? []) (version as { string: string }).string = 'not json';
    await expect(provider({ secretId: 'plain' }).read(FIELDS)).rejects.toThrow(/not a JSON object/);
  });

  it('clear errors for a missing secret; retries throttling and 500s a bounded number of times', async () => {
    await expect(provider({ secretId: 'missing' }).read(FIELDS)).rejects.toBeInstanceOf(ConfigError);
    aws.faults.push({ kind: 'throttle' }, { kind: 'internal' });
    expect((await provider().read(FIELDS)).fields.STEM_SIGNING_ACTIVE_KEY).toBe('k1');
    aws.faults.push({ kind: 'throttle' }, { kind: 'throttle' }, { kind: 'throttle' }, { kind: 'throttle' });
    await expect(provider().read(FIELDS)).rejects.toThrow(/ThrottlingException/);
  });

  it('errors never contain the secret values', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    aws.faults.push({ kind: 'concurrent-put', operation: 'UpdateSecretVersionStage', data: {} });
    const error = await write(target, snapshot.version, { STEM_SIGNING_KEYS: 'k2:c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==' }).catch((caught: unknown) => caught);
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw');
    expect(String((error as Error).message)).not.toContain('c2VjcmV0');
  });
});

/**
 * `aws-secrets-manager`: a secret whose SecretString is a JSON object, through
 * `@aws-sdk/client-secrets-manager` (imported lazily). Secrets Manager has no If-Match, so a write
 * is two steps: PutSecretValue with a deterministic ClientRequestToken (from rotation, transition,
 * target and the content: a retry is a no-op; a regenerated key after a crash gets a new version
 * instead of colliding with the abandoned one) labelled only `STEMROTOR`, then UpdateSecretVersionStage moving AWSCURRENT from the version we read to
 * ours — which fails if anyone moved AWSCURRENT meanwhile (compare-and-set). AWSCURRENT is checked
 * before and after. Secrets with AWS-managed rotation are refused unless explicitly allowed.
 */
import { createHash } from 'node:crypto';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError, ConflictError, RotorError } from '../src/errors.js';
import { stringFields } from './_fields.js';
import { importLib } from '../src/import-lib.js';
import { isTransientHttpError, withRetries, type RetryPolicy } from './retry.js';
import type { Provider, TargetSnapshot, WriteRequest } from './types.js';

export const PROVIDER_NAME = 'aws-secrets-manager';
/** The staging label on the version stem-rotor wrote last. */
export const STAGE_LABEL = 'STEMROTOR';

export interface AwsSecretsManagerOptions {
  readonly target: string;
  /** Secret name or ARN. */
  readonly secretId: string;
  /** @default the SDK's (AWS_REGION, profile) */
  readonly region?: string;
  /** Endpoint override (VPC endpoint, LocalStack, the test emulator). */
  readonly endpoint?: string;
  /** Write even though AWS-managed rotation is enabled on the secret (its Lambda would fight us). */
  readonly allowManagedRotation?: boolean;
  readonly retry?: RetryPolicy;
}

function errorName(error: unknown): string {
  return String((error as { name?: unknown } | null)?.name ?? '');
}

function isTransient(error: unknown): boolean {
  const name = errorName(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return name === 'ThrottlingException' || name === 'InternalServiceError' || name === 'TooManyRequestsException' || isTransientHttpError(error, status);
}

/** A UUID-shaped token from the idempotency key and the content: stable across retries and resumes. */
export function clientRequestToken(idempotencyKey: string, content: string): string {
  const hex = createHash('sha256').update(`stem-rotor:${idempotencyKey}\u0000${content}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export class AwsSecretsManagerProvider implements Provider {
  readonly providerName = PROVIDER_NAME;
  readonly location: string;
  private readonly options: AwsSecretsManagerOptions;
  private client: Promise<{ client: SecretsManagerClient; sdk: typeof import('@aws-sdk/client-secrets-manager') }> | null = null;

  constructor(options: AwsSecretsManagerOptions) {
    this.options = options;
    this.location = `secretsmanager ${options.region ?? ''} ${options.secretId}`.replace(/\s+/g, ' ');
  }

  private fail(action: string, error: unknown): never {
    const where = `target "${this.options.target}": ${action} ${this.options.secretId}`;
    switch (errorName(error)) {
      case 'ResourceNotFoundException':
        throw new ConfigError(`${where}: no such secret`);
      case 'AccessDeniedException':
        throw new RotorError(`${where}: access denied (the IAM policy needs secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue and UpdateSecretVersionStage on this secret)`, { cause: error });
      case 'InvalidRequestException':
        throw new RotorError(`${where}: refused by Secrets Manager (is the secret scheduled for deletion?): ${(error as Error).message}`, { cause: error });
      default:
        throw new RotorError(`${where} failed: ${errorName(error) || 'error'}: ${(error as Error).message}`, { cause: error });
    }
  }

  private getClient() {
    this.client ??= (async () => {
      const sdk = await importLib<typeof import('@aws-sdk/client-secrets-manager')>('@aws-sdk/client-secrets-manager', () => import('@aws-sdk/client-secrets-manager'), 'SecretsManagerClient');
      const client = new sdk.SecretsManagerClient({
        maxAttempts: 1, // retries are ours: bounded, with jitter, transient errors only
        ...(this.options.region ? { region: this.options.region } : {}),
        ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
      });
      return { client, sdk };
    })();
    return this.client;
  }

  private async call<T>(action: string, send: (client: SecretsManagerClient, sdk: typeof import('@aws-sdk/client-secrets-manager')) => Promise<T>): Promise<T> {
    const { client, sdk } = await this.getClient();
    try {
      return await withRetries(() => send(client, sdk), isTransient, this.options.retry);
    } catch (error) {
      // Compare-and-set outcomes are for the caller to interpret.
      if (errorName(error) === 'ResourceExistsException' || errorName(error) === 'InvalidParameterException') throw error;
      this.fail(action, error);
    }
  }

  /** DescribeSecret: refuses managed rotation and deletion; returns the AWSCURRENT version id. */
  private async currentVersion(): Promise<string> {
    const description = await this.call('describe', (client, sdk) => client.send(new sdk.DescribeSecretCommand({ SecretId: this.options.secretId })));
    if (description.DeletedDate) throw new RotorError(`target "${this.options.target}": ${this.options.secretId} is scheduled for deletion`);
    if (description.RotationEnabled && !this.options.allowManagedRotation) {
      throw new ConfigError(`target "${this.options.target}": ${this.options.secretId} has AWS-managed rotation enabled; its rotation Lambda would fight stem-rotor (set allowManagedRotation: true to override)`);
    }
    const current = Object.entries(description.VersionIdsToStages ?? {}).find(([, stages]) => stages.includes('AWSCURRENT'))?.[0];
    if (!current) throw new RotorError(`target "${this.options.target}": ${this.options.secretId} has no AWSCURRENT version`);
    return current;
  }

  private async readCurrent(): Promise<{ versionId: string; data: Record<string, unknown> }> {
    await this.currentVersion();
    const value = await this.call('read of', (client, sdk) => client.send(new sdk.GetSecretValueCommand({ SecretId: this.options.secretId, VersionStage: 'AWSCURRENT' })));
    let data: unknown;
    try {
      data = JSON.parse(value.SecretString ?? '');
    } catch {
      throw new RotorError(`target "${this.options.target}": the SecretString of ${this.options.secretId} is not a JSON object`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new RotorError(`target "${this.options.target}": the SecretString of ${this.options.secretId} is not a JSON object`);
    return { versionId: value.VersionId as string, data: data as Record<string, unknown> };
  }

  async read(fields: readonly string[]): Promise<TargetSnapshot> {
    const { versionId, data } = await this.readCurrent();
    return { fields: stringFields(this.options.target, data, fields), version: `aws:${versionId}` };
  }

  async write(request: WriteRequest): Promise<{ version: string }> {
    const current = await this.readCurrent();
    if (`aws:${current.versionId}` !== request.expectedVersion) {
      throw new ConflictError(`target "${this.options.target}": AWSCURRENT of ${this.options.secretId} is ${current.versionId}, expected ${request.expectedVersion}`);
    }
    const secretString = JSON.stringify({ ...current.data, ...request.set });
    const token = clientRequestToken(request.idempotencyKey, secretString);
    try {
      await this.call('write of', (client, sdk) => client.send(new sdk.PutSecretValueCommand({ SecretId: this.options.secretId, ClientRequestToken: token, SecretString: secretString, VersionStages: [STAGE_LABEL] })));
    } catch (error) {
      if (errorName(error) !== 'ResourceExistsException') throw error;
      // Same token, different content: another writer under our token.
      throw new ConflictError(`target "${this.options.target}": version ${token} of ${this.options.secretId} already exists with other content`, { cause: error });
    }
    try {
      await this.call('activation of', (client, sdk) =>
        client.send(new sdk.UpdateSecretVersionStageCommand({ SecretId: this.options.secretId, VersionStage: 'AWSCURRENT', MoveToVersionId: token, RemoveFromVersionId: current.versionId })),
      );
    } catch (error) {
      if (errorName(error) !== 'InvalidParameterException') throw error;
      throw new ConflictError(`target "${this.options.target}": AWSCURRENT of ${this.options.secretId} moved concurrently; not activating version ${token}`, { cause: error });
    }
    const after = await this.currentVersion();
    if (after !== token) throw new ConflictError(`target "${this.options.target}": AWSCURRENT of ${this.options.secretId} is ${after} right after we set it to ${token}`);
    return { version: `aws:${token}` };
  }
}

export default function createAwsSecretsManagerProvider(options: AwsSecretsManagerOptions): Provider {
  return new AwsSecretsManagerProvider(options);
}

/**
 * An AWS Secrets Manager emulator speaking the AWS JSON 1.1 protocol (`X-Amz-Target:
 * secretsmanager.<Operation>`) for the calls the provider makes, with the documented semantics:
 * versions with staging labels (moving AWSCURRENT moves AWSPREVIOUS), ClientRequestToken
 * idempotency (same token + same content = no-op; other content = ResourceExistsException),
 * UpdateSecretVersionStage's RemoveFromVersionId check (InvalidParameterException), rotation and
 * deletion flags, and error bodies `{"__type": …, "message": …}`. Fault injection: throttling,
 * 500s, latency, a concurrent writer moving AWSCURRENT.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpEmulator } from './http-emulator.js';

interface SecretVersion {
  readonly id: string;
  readonly string: string;
  readonly stages: Set<string>;
  readonly created: number;
}

interface Secret {
  readonly name: string;
  readonly arn: string;
  readonly versions: Map<string, SecretVersion>;
  rotationEnabled: boolean;
  deleted: boolean;
}

export type AwsFault =
  | { readonly kind: 'throttle'; readonly operation?: string }
  | { readonly kind: 'internal'; readonly operation?: string }
  | { readonly kind: 'concurrent-put'; readonly operation: string; readonly data: Record<string, unknown> }
  | { readonly kind: 'latency'; readonly ms: number }
  | { readonly kind: 'reset-after'; readonly operation: string };

export class AwsSecretsManagerEmulator extends HttpEmulator {
  readonly secrets = new Map<string, Secret>();
  readonly faults: AwsFault[] = [];
  readonly calls: { operation: string; body: Record<string, unknown> }[] = [];
  latencyMs = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }


  create(name: string, data: Record<string, unknown>, options: { rotationEnabled?: boolean } = {}): void {
    const secret: Secret = { name, arn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`, versions: new Map(), rotationEnabled: options.rotationEnabled ?? false, deleted: false };
    this.secrets.set(name, secret);
    this.putVersion(secret, randomUUID(), JSON.stringify(data), undefined);
  }

  /** A new AWSCURRENT version written by someone else (the console, another tool). */
  putOutside(name: string, data: Record<string, unknown>): void {
    const secret = this.secrets.get(name);
    if (!secret) throw new Error(`no secret ${name}`);
    this.putVersion(secret, randomUUID(), JSON.stringify(data), undefined);
  }

  current(name: string): { versionId: string; data: Record<string, unknown> } | null {
    const secret = this.secrets.get(name);
    const version = secret && [...secret.versions.values()].find((v) => v.stages.has('AWSCURRENT'));
    return version ? { versionId: version.id, data: JSON.parse(version.string) } : null;
  }

  private putVersion(secret: Secret, id: string, string: string, stages: string[] | undefined): SecretVersion {
    const version: SecretVersion = { id, string, stages: new Set(), created: Date.now() };
    secret.versions.set(id, version);
    for (const stage of stages ?? ['AWSCURRENT']) this.moveStage(secret, stage, id);
    return version;
  }

  /** Labels are unique per secret; moving AWSCURRENT leaves AWSPREVIOUS on the version it left. */
  private moveStage(secret: Secret, stage: string, to: string): void {
    const from = [...secret.versions.values()].find((v) => v.stages.has(stage));
    from?.stages.delete(stage);
    secret.versions.get(to)?.stages.add(stage);
    if (stage === 'AWSCURRENT' && from && from.id !== to) this.moveStage(secret, 'AWSPREVIOUS', from.id);
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.replace(/^secretsmanager\./, '');
    this.calls.push({ operation, body });
    const reply = (status: number, json: unknown) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
      response.end(JSON.stringify(json));
    };
    const error = (type: string, message: string, status = 400) => reply(status, { __type: type, message });

    if (this.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (!String(request.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) return error('UnrecognizedClientException', 'The security token included in the request is invalid.');
    const fault = this.faults[0];
    if (fault?.kind === 'latency') {
      this.faults.shift();
      await new Promise((resolve) => setTimeout(resolve, fault.ms));
    } else if ((fault?.kind === 'throttle' || fault?.kind === 'internal') && (!fault.operation || fault.operation === operation)) {
      this.faults.shift();
      return fault.kind === 'throttle' ? error('ThrottlingException', 'Rate exceeded') : error('InternalServiceError', 'An error occurred on the server side.', 500);
    } else if (fault?.kind === 'concurrent-put' && fault.operation === operation) {
      this.faults.shift();
      const secret = this.secrets.get(String(body.SecretId));
      if (secret) this.putVersion(secret, randomUUID(), JSON.stringify(fault.data), undefined);
    }

    const secret = this.secrets.get(String(body.SecretId)) ?? [...this.secrets.values()].find((s) => s.arn === body.SecretId);
    if (!secret) return error('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    const summary = { ARN: secret.arn, Name: secret.name };

    switch (operation) {
      case 'DescribeSecret':
        return reply(200, {
          ...summary,
          RotationEnabled: secret.rotationEnabled,
          ...(secret.deleted ? { DeletedDate: Date.now() / 1000 } : {}),
          VersionIdsToStages: Object.fromEntries([...secret.versions.values()].filter((v) => v.stages.size > 0).map((v) => [v.id, [...v.stages]])),
        });
      case 'GetSecretValue': {
        if (secret.deleted) return error('InvalidRequestException', 'You tried to perform the operation on a secret that is currently marked deleted.');
        const stage = String(body.VersionStage ?? 'AWSCURRENT');
        const version = body.VersionId ? secret.versions.get(String(body.VersionId)) : [...secret.versions.values()].find((v) => v.stages.has(stage));
        if (!version) return error('ResourceNotFoundException', "Secrets Manager can't find the specified secret value for staging label: " + stage);
        return reply(200, { ...summary, VersionId: version.id, SecretString: version.string, VersionStages: [...version.stages], CreatedDate: version.created / 1000 });
      }
      case 'PutSecretValue': {
        if (secret.deleted) return error('InvalidRequestException', 'You tried to perform the operation on a secret that is currently marked deleted.');
        const token = String(body.ClientRequestToken ?? randomUUID());
        if (token.length < 32 || token.length > 64) return error('InvalidParameterException', 'ClientRequestToken must be 32-64 characters');
        const existing = secret.versions.get(token);
        if (existing) {
          if (existing.string !== body.SecretString) return error('ResourceExistsException', 'A resource with the ID you requested already exists.');
          return reply(200, { ...summary, VersionId: existing.id, VersionStages: [...existing.stages] });
        }
        const version = this.putVersion(secret, token, String(body.SecretString), body.VersionStages as string[] | undefined);
        if (this.faults[0]?.kind === 'reset-after' && this.faults[0].operation === operation) {
          this.faults.shift();
          request.socket.destroy();
          return;
        }
        return reply(200, { ...summary, VersionId: version.id, VersionStages: [...version.stages] });
      }
      case 'UpdateSecretVersionStage': {
        const stage = String(body.VersionStage);
        const holder = [...secret.versions.values()].find((v) => v.stages.has(stage));
        if (holder && holder.id !== body.MoveToVersionId && holder.id !== body.RemoveFromVersionId) {
          return error('InvalidParameterException', `The staging label ${stage} is currently attached to version ${holder.id}, so you must explicitly reference that version in RemoveFromVersionId.`);
        }
        if (body.MoveToVersionId && !secret.versions.has(String(body.MoveToVersionId))) return error('ResourceNotFoundException', 'version not found');
        if (body.MoveToVersionId) this.moveStage(secret, stage, String(body.MoveToVersionId));
        else holder?.stages.delete(stage);
        return reply(200, summary);
      }
      default:
        return error('UnknownOperationException', `unknown operation ${operation}`);
    }
  }
}

/**
 * `vault-kv2`: a HashiCorp Vault KV version 2 secret (`<mount>/data/<path>`), through `node-vault`
 * (imported lazily). Compare-and-set with `options.cas` = the version read; a KV v1 mount is refused
 * because it silently ignores `cas`. The whole data map is written back with our fields changed, so
 * every other field is preserved. Token or AppRole auth, Vault namespaces, a CA bundle; `VAULT_ADDR`,
 * `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT` as the Vault CLI reads them.
 */
import { readFileSync } from 'node:fs';
import type NodeVault from 'node-vault';
import { ConfigError, ConflictError, RotorError } from '../src/errors.js';
import { stringFields } from './_fields.js';
import { importLib } from '../src/import-lib.js';
import { isTransientHttpError, withRetries, type RetryPolicy } from './retry.js';
import type { Provider, TargetSnapshot, WriteRequest } from './types.js';

export const PROVIDER_NAME = 'vault-kv2';

export type VaultAuth =
  | { readonly method: 'token'; readonly tokenEnv?: string }
  | { readonly method: 'approle'; readonly roleIdEnv: string; readonly secretIdEnv: string; readonly mount?: string };

export interface VaultKv2Options {
  readonly target: string;
  /** The KV v2 mount, e.g. `secret`. */
  readonly mount: string;
  /** The secret's path inside the mount, e.g. `stem/billing`. */
  readonly path: string;
  /** @default $VAULT_ADDR */
  readonly address?: string;
  /** Vault Enterprise namespace. @default $VAULT_NAMESPACE */
  readonly namespace?: string;
  /** PEM CA bundle for the Vault server. @default $VAULT_CACERT */
  readonly caFile?: string;
  /** @default { method: 'token' } reading $VAULT_TOKEN */
  readonly auth?: VaultAuth;
  readonly retry?: RetryPolicy;
  readonly env?: NodeJS.ProcessEnv;
}

interface ResponseError {
  readonly message: string;
  readonly response?: { readonly statusCode?: number };
}

function statusOf(error: unknown): number | undefined {
  return (error as ResponseError | null)?.response?.statusCode;
}

function isTransient(error: unknown): boolean {
  return isTransientHttpError(error, statusOf(error));
}

const CAS_MISMATCH = /check-and-set parameter did not match/;

export class VaultKv2Provider implements Provider {
  readonly providerName = PROVIDER_NAME;
  readonly location: string;
  private readonly options: VaultKv2Options;
  private client: Promise<NodeVault.client> | null = null;
  private mountChecked = false;
  private lastRead: { data: Record<string, unknown>; version: number } | null = null;

  constructor(options: VaultKv2Options) {
    this.options = options;
    const env = options.env ?? process.env;
    this.location = `${options.address ?? env.VAULT_ADDR ?? '(VAULT_ADDR unset)'} ${options.mount}/data/${options.path}`;
  }

  private fail(action: string, error: unknown): never {
    const status = statusOf(error);
    const where = `target "${this.options.target}": vault ${action} ${this.options.mount}/data/${this.options.path}`;
    const detail = (error as Error).message;
    if (status === 403) throw new RotorError(`${where}: permission denied (the token's policy needs read, create and update on ${this.options.mount}/data/${this.options.path})`, { cause: error });
    if (status === 404) throw new ConfigError(`${where}: no such secret (or it is deleted); create it first`);
    throw new RotorError(`${where} failed: ${detail}`, { cause: error });
  }

  private getClient(): Promise<NodeVault.client> {
    this.client ??= (async () => {
      const env = this.options.env ?? process.env;
      const endpoint = this.options.address ?? env.VAULT_ADDR;
      if (!endpoint) throw new ConfigError(`target "${this.options.target}": no Vault address (set address or $VAULT_ADDR)`);
      const caFile = this.options.caFile ?? env.VAULT_CACERT;
      const createVault = await importLib<typeof NodeVault>('node-vault', () => import('node-vault'), 'approleLogin');
      const namespace = this.options.namespace ?? env.VAULT_NAMESPACE;
      const client = createVault({
        endpoint,
        // node-vault's debug logger prints request bodies (our keys): never enable it.
        debug: () => undefined,
        ...(namespace ? { namespace } : {}),
        ...(caFile ? { requestOptions: { ca: readFileSync(caFile) } } : {}),
      });
      const auth = this.options.auth ?? { method: 'token' };
      if (auth.method === 'token') {
        const name = auth.tokenEnv ?? 'VAULT_TOKEN';
        const token = env[name];
        if (!token) throw new ConfigError(`target "${this.options.target}": $${name} is not set`);
        client.token = token;
      } else {
        const roleId = env[auth.roleIdEnv];
        const secretId = env[auth.secretIdEnv];
        if (!roleId || !secretId) throw new ConfigError(`target "${this.options.target}": $${auth.roleIdEnv} and $${auth.secretIdEnv} must be set for AppRole`);
        try {
          await withRetries(() => client.approleLogin({ role_id: roleId, secret_id: secretId, ...(auth.mount ? { mount_point: auth.mount } : {}) }), isTransient, this.options.retry);
        } catch (error) {
          this.fail('AppRole login for', error);
        }
      }
      return client;
    })();
    return this.client;
  }

  /**
   * KV v1 ignores `cas`: writing there could overwrite a concurrent change. Refuse it. Asked once
   * per Vault, namespace and mount a minute (twelve targets on one mount ask once); a failed
   * answer is asked again by each target, so each error names its own.
   */
  private async checkMount(client: NodeVault.client): Promise<void> {
    if (this.mountChecked) return;
    const env = this.options.env ?? process.env;
    const key = JSON.stringify([this.options.address ?? env.VAULT_ADDR, this.options.namespace ?? env.VAULT_NAMESPACE ?? '', this.options.mount]);
    let shared = confirmedMounts.get(key);
    if (!shared || Date.now() - shared.at > MOUNT_CONFIRMATION_MS) {
      shared = { at: Date.now(), check: this.lookUpMount(client) };
      confirmedMounts.set(key, shared);
      shared.check.catch(() => confirmedMounts.delete(key));
    }
    await shared.check.catch(() => this.lookUpMount(client));
    this.mountChecked = true;
  }

  private async lookUpMount(client: NodeVault.client): Promise<void> {
    let reply: { data?: { type?: string; options?: { version?: string } | null } };
    try {
      reply = await withRetries(() => client.request({ path: `/sys/internal/ui/mounts/${this.options.mount}/${this.options.path}`, method: 'GET' }), isTransient, this.options.retry);
    } catch (error) {
      this.fail('mount lookup for', error);
    }
    const version = reply.data?.options?.version;
    if (reply.data?.type !== 'kv' || version !== '2') {
      throw new ConfigError(`target "${this.options.target}": mount "${this.options.mount}" is ${reply.data?.type ?? 'unknown'} version ${version ?? '1'}, not KV v2 (KV v1 silently ignores check-and-set)`);
    }
  }

  private async readAll(): Promise<{ data: Record<string, unknown>; version: number }> {
    const client = await this.getClient();
    await this.checkMount(client);
    let reply: { data?: { data?: Record<string, unknown> | null; metadata?: { version?: number } } };
    try {
      reply = await withRetries(() => client.request({ path: `/${this.options.mount}/data/${this.options.path}`, method: 'GET' }), isTransient, this.options.retry);
    } catch (error) {
      this.fail('read of', error);
    }
    const version = reply.data?.metadata?.version;
    if (typeof version !== 'number' || !reply.data?.data) this.fail('read of', { message: 'no current version', response: { statusCode: 404 } });
    this.lastRead = { data: reply.data.data, version };
    return this.lastRead;
  }

  async read(fields: readonly string[]): Promise<TargetSnapshot> {
    const { data, version } = await this.readAll();
    return { fields: stringFields(this.options.target, data, fields), version: `kv2:${version}` };
  }

  async write(request: WriteRequest): Promise<{ version: string }> {
    // The version read last is what the write is planned on; a version is immutable, so its data
    // need not be fetched again — and if the secret moved on since, check-and-set refuses the write.
    const current = this.lastRead && `kv2:${this.lastRead.version}` === request.expectedVersion ? this.lastRead : await this.readAll();
    if (`kv2:${current.version}` !== request.expectedVersion) {
      throw new ConflictError(`target "${this.options.target}": ${this.options.mount}/data/${this.options.path} is at version ${current.version}, expected ${request.expectedVersion}`);
    }
    const client = await this.getClient();
    const body = { options: { cas: current.version }, data: { ...current.data, ...request.set } };
    let reply: { data?: { version?: number } };
    try {
      reply = await withRetries(() => client.request({ path: `/${this.options.mount}/data/${this.options.path}`, method: 'POST', json: body }), isTransient, this.options.retry);
    } catch (error) {
      // A retried write whose first attempt landed also ends here: the engine re-reads and finds it.
      this.lastRead = null;
      if (statusOf(error) === 400 && CAS_MISMATCH.test((error as Error).message)) {
        throw new ConflictError(`target "${this.options.target}": ${this.options.mount}/data/${this.options.path} changed concurrently (check-and-set version ${current.version} did not match)`);
      }
      this.fail('write of', error);
    }
    return { version: `kv2:${reply.data?.version ?? current.version + 1}` };
  }
}

/** KV v2 mounts confirmed (or being confirmed) in this process; a daemon asks again after a minute. */
const confirmedMounts = new Map<string, { readonly at: number; readonly check: Promise<void> }>();
const MOUNT_CONFIRMATION_MS = 60_000;

export default function createVaultKv2Provider(options: VaultKv2Options): Provider {
  return new VaultKv2Provider(options);
}

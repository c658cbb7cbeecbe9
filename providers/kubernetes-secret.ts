/**
 * `kubernetes-secret`: a Secret's base64 `data` through `@kubernetes/client-node` (imported
 * lazily). Compare-and-set with `metadata.resourceVersion` (HTTP 409 on a concurrent change). The
 * whole Secret is replaced with our fields changed, so other keys, labels and annotations stay.
 * Optionally restarts named Deployments after a write the way `kubectl rollout restart` does: a
 * `kubectl.kubernetes.io/restartedAt` pod-template annotation.
 */
import type { AppsV1Api, CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { ConfigError, ConflictError, RotorError } from '../src/errors.js';
import { importLib } from './_import-lib.js';
import { isTransientHttpError, withRetries, type RetryPolicy } from './retry.js';
import type { Provider, TargetSnapshot, WriteRequest } from './types.js';

export const PROVIDER_NAME = 'kubernetes-secret';

export interface KubernetesSecretOptions {
  readonly target: string;
  readonly namespace: string;
  readonly name: string;
  /** A kubeconfig file; default: $KUBECONFIG / ~/.kube/config, or the in-cluster service account. */
  readonly kubeconfig?: string;
  /** A kubeconfig context other than the current one. */
  readonly context?: string;
  /** Deployments (same namespace) to roll after every write, as `kubectl rollout restart` does. */
  readonly restartDeployments?: readonly string[];
  readonly retry?: RetryPolicy;
  /** Injected for tests: the restart annotation's time. */
  readonly now?: () => Date;
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function isTransient(error: unknown): boolean {
  return isTransientHttpError(error, statusOf(error));
}

interface Clients {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly mergePatch: unknown;
}

export class KubernetesSecretProvider implements Provider {
  readonly providerName = PROVIDER_NAME;
  readonly location: string;
  private readonly options: KubernetesSecretOptions;
  private clients: Promise<Clients> | null = null;

  constructor(options: KubernetesSecretOptions) {
    this.options = options;
    this.location = `secret ${options.namespace}/${options.name}`;
  }

  private fail(action: string, error: unknown): never {
    const status = statusOf(error);
    const where = `target "${this.options.target}": ${action} ${this.location}`;
    if (status === 401) throw new RotorError(`${where}: unauthorized (check the kubeconfig credentials)`, { cause: error });
    if (status === 403) throw new RotorError(`${where}: forbidden (the Role needs get, update on secrets/${this.options.name}${this.options.restartDeployments?.length ? ' and patch on deployments' : ''})`, { cause: error });
    if (status === 404) throw new ConfigError(`${where}: not found`);
    const reason = (error as { body?: unknown }).body;
    const message = typeof reason === 'string' ? (JSON.parse(reason) as { message?: string }).message : (error as Error).message;
    throw new RotorError(`${where} failed: ${status ? `HTTP ${status} ` : ''}${message ?? ''}`.trim(), { cause: error });
  }

  private getClients(): Promise<Clients> {
    this.clients ??= (async () => {
      const k8s = await importLib<typeof import('@kubernetes/client-node')>('@kubernetes/client-node', () => import('@kubernetes/client-node'), 'KubeConfig');
      const config = new k8s.KubeConfig();
      try {
        if (this.options.kubeconfig) config.loadFromFile(this.options.kubeconfig);
        else config.loadFromDefault();
        if (this.options.context) config.setCurrentContext(this.options.context);
      } catch (error) {
        throw new ConfigError(`target "${this.options.target}": cannot load the kubeconfig: ${(error as Error).message}`);
      }
      if (!config.getCurrentCluster()) throw new ConfigError(`target "${this.options.target}": no Kubernetes cluster configured (kubeconfig or in-cluster)`);
      return {
        core: config.makeApiClient(k8s.CoreV1Api),
        apps: config.makeApiClient(k8s.AppsV1Api),
        mergePatch: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      };
    })();
    return this.clients;
  }

  private async readSecret(): Promise<V1Secret> {
    const { core } = await this.getClients();
    try {
      return await withRetries(() => core.readNamespacedSecret({ name: this.options.name, namespace: this.options.namespace }), isTransient, this.options.retry);
    } catch (error) {
      this.fail('read of', error);
    }
  }

  async read(fields: readonly string[]): Promise<TargetSnapshot> {
    const secret = await this.readSecret();
    const values: Record<string, string> = {};
    for (const field of fields) {
      const encoded = secret.data?.[field];
      if (encoded !== undefined) values[field] = Buffer.from(encoded, 'base64').toString('utf8');
    }
    return { fields: values, version: `rv:${secret.metadata?.resourceVersion ?? ''}` };
  }

  async write(request: WriteRequest): Promise<{ version: string }> {
    const { core } = await this.getClients();
    const current = await this.readSecret();
    const resourceVersion = current.metadata?.resourceVersion ?? '';
    if (`rv:${resourceVersion}` !== request.expectedVersion) {
      throw new ConflictError(`target "${this.options.target}": ${this.location} is at resourceVersion ${resourceVersion}, expected ${request.expectedVersion}`);
    }
    const data = { ...(current.data ?? {}) };
    for (const [field, value] of Object.entries(request.set)) data[field] = Buffer.from(value, 'utf8').toString('base64');
    const body: V1Secret = { ...current, metadata: { ...current.metadata, resourceVersion }, data };
    let written: V1Secret;
    try {
      written = await withRetries(() => core.replaceNamespacedSecret({ name: this.options.name, namespace: this.options.namespace, body }), isTransient, this.options.retry);
    } catch (error) {
      if (statusOf(error) === 409) throw new ConflictError(`target "${this.options.target}": ${this.location} was modified concurrently (resourceVersion ${resourceVersion} is stale)`);
      this.fail('update of', error);
    }
    return { version: `rv:${written.metadata?.resourceVersion ?? ''}` };
  }

  /** The rollout restart, a recorded step of its own: a crash or failure after the Secret update is retried on resume. */
  async afterWrite(): Promise<void> {
    const names = this.options.restartDeployments ?? [];
    if (names.length === 0) return;
    const { apps, mergePatch } = await this.getClients();
    const restartedAt = (this.options.now ?? (() => new Date()))().toISOString();
    const patch = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': restartedAt } } } } };
    for (const name of names) {
      try {
        await withRetries(() => apps.patchNamespacedDeployment({ name, namespace: this.options.namespace, body: patch }, mergePatch as never), isTransient, this.options.retry);
      } catch (error) {
        this.fail(`rollout restart of deployment ${this.options.namespace}/${name} after writing`, error);
      }
    }
  }
}

export default function createKubernetesSecretProvider(options: KubernetesSecretOptions): Provider {
  return new KubernetesSecretProvider(options);
}

/**
 * `kubernetes-secret`: a Secret's base64 `data` through `@kubernetes/client-node` (imported
 * lazily). Compare-and-set with `metadata.resourceVersion` (HTTP 409 on a concurrent change). The
 * whole Secret is replaced with our fields changed, so other keys, labels and annotations stay.
 * Optionally restarts named workloads after a write — Deployments, StatefulSets and DaemonSets the
 * way `kubectl rollout restart` does (a `kubectl.kubernetes.io/restartedAt` pod-template
 * annotation), Argo Rollouts through `spec.restartAt` — and reports how far their controllers got.
 * Records Kubernetes Events on the Secret and the workloads it restarts.
 */
import type { AppsV1Api, CoreV1Api, CustomObjectsApi, V1Secret } from '@kubernetes/client-node';
import type { RingEvent, WorkloadKind, WorkloadRollout } from '../src/core/types.js';
import { ConfigError, ConflictError, RotorError } from '../src/errors.js';
import { importLib } from '../src/import-lib.js';
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
  /** Workloads (same namespace) to restart after every write. */
  readonly restart?: readonly { readonly kind: WorkloadKind; readonly name: string }[];
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
  readonly custom: CustomObjectsApi;
  readonly mergePatch: unknown;
}

const ARGO = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' } as const;

/** A workload object as its controller reports it (the fields `rolloutOf` reads). */
interface WorkloadObject {
  readonly metadata?: { readonly generation?: number };
  readonly spec?: { readonly replicas?: number; readonly restartAt?: string };
  readonly status?: Record<string, unknown>;
}

/**
 * Whether a restarted workload's rollout finished, as `kubectl rollout status` decides it: the
 * controller saw the latest generation and every replica runs the new template and is available.
 * An Argo Rollout is done when its `status.restartedAt` reached `spec.restartAt` and it is Healthy.
 */
export function rolloutOf(kind: WorkloadKind, object: WorkloadObject): { done: boolean; detail: string } {
  const status = object.status ?? {};
  const number = (field: string) => (typeof status[field] === 'number' ? (status[field] as number) : 0);
  const generation = object.metadata?.generation ?? 0;
  const observed = Number(status.observedGeneration ?? 0);
  const seen = observed >= generation;
  const generations = `generation ${observed}/${generation}`;
  if (kind === 'Rollout') {
    const restartAt = object.spec?.restartAt;
    const restartedAt = typeof status.restartedAt === 'string' ? status.restartedAt : undefined;
    const restarted = restartAt === undefined || (restartedAt !== undefined && restartedAt >= restartAt);
    return { done: restarted && status.phase === 'Healthy', detail: `phase ${String(status.phase ?? 'unknown')}, restartedAt ${restartedAt ?? 'none'} (asked ${restartAt ?? 'never'})` };
  }
  if (kind === 'DaemonSet') {
    const desired = number('desiredNumberScheduled');
    const updated = number('updatedNumberScheduled');
    const available = number('numberAvailable');
    return { done: seen && updated === desired && available === desired, detail: `${generations}, ${updated}/${desired} updated, ${available} available` };
  }
  const replicas = object.spec?.replicas ?? 1;
  const updated = number('updatedReplicas');
  const ready = number(kind === 'StatefulSet' ? 'readyReplicas' : 'availableReplicas');
  const revision = kind !== 'StatefulSet' || status.currentRevision === status.updateRevision;
  return { done: seen && updated === replicas && ready === replicas && revision, detail: `${generations}, ${updated}/${replicas} updated, ${ready} ${kind === 'StatefulSet' ? 'ready' : 'available'}` };
}

export class KubernetesSecretProvider implements Provider {
  readonly providerName = PROVIDER_NAME;
  readonly location: string;
  private readonly options: KubernetesSecretOptions;
  private clients: Promise<Clients> | null = null;
  private lastRead: V1Secret | null = null;

  constructor(options: KubernetesSecretOptions) {
    this.options = options;
    this.location = `secret ${options.namespace}/${options.name}`;
  }

  private fail(action: string, error: unknown): never {
    const status = statusOf(error);
    const where = `target "${this.options.target}": ${action} ${this.location}`;
    if (status === 401) throw new RotorError(`${where}: unauthorized (check the kubeconfig credentials)`, { cause: error });
    if (status === 403) throw new RotorError(`${where}: forbidden (the Role needs get, update on secrets/${this.options.name}${this.options.restart?.length ? ', get and patch on the restarted workloads' : ''})`, { cause: error });
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
        custom: config.makeApiClient(k8s.CustomObjectsApi),
        mergePatch: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      };
    })();
    return this.clients;
  }

  private async readSecret(): Promise<V1Secret> {
    const { core } = await this.getClients();
    try {
      this.lastRead = await withRetries(() => core.readNamespacedSecret({ name: this.options.name, namespace: this.options.namespace }), isTransient, this.options.retry);
      return this.lastRead;
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
    // The Secret as read last is what the write is planned on: not fetched again when it is still
    // that resourceVersion — the update carries it, so the API server refuses it if the Secret moved on.
    const current = this.lastRead && `rv:${this.lastRead.metadata?.resourceVersion ?? ''}` === request.expectedVersion ? this.lastRead : await this.readSecret();
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
      this.lastRead = null; // whatever happened, the next write looks again
      if (statusOf(error) === 409) throw new ConflictError(`target "${this.options.target}": ${this.location} was modified concurrently (resourceVersion ${resourceVersion} is stale)`);
      this.fail('update of', error);
    }
    return { version: `rv:${written.metadata?.resourceVersion ?? ''}` };
  }

  /** The rollout restarts, a recorded step of their own: a crash or failure after the Secret update is retried on resume. */
  async afterWrite(): Promise<void> {
    const workloads = this.options.restart ?? [];
    if (workloads.length === 0) return;
    const { apps, custom, mergePatch } = await this.getClients();
    const now = (this.options.now ?? (() => new Date()))();
    const annotation = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': now.toISOString() } } } } };
    const namespace = this.options.namespace;
    for (const { kind, name } of workloads) {
      const patch = (): Promise<unknown> => {
        switch (kind) {
          case 'Deployment':
            return apps.patchNamespacedDeployment({ name, namespace, body: annotation }, mergePatch as never);
          case 'StatefulSet':
            return apps.patchNamespacedStatefulSet({ name, namespace, body: annotation }, mergePatch as never);
          case 'DaemonSet':
            return apps.patchNamespacedDaemonSet({ name, namespace, body: annotation }, mergePatch as never);
          case 'Rollout':
            // RFC 3339 in whole seconds, as `kubectl argo rollouts restart` writes it
            return custom.patchNamespacedCustomObject({ ...ARGO, namespace, name, body: { spec: { restartAt: now.toISOString().replace(/\.\d{3}Z$/, 'Z') } } }, mergePatch as never);
        }
      };
      try {
        await withRetries(patch, isTransient, this.options.retry);
      } catch (error) {
        this.fail(`rollout restart of ${kind} ${namespace}/${name} after writing`, error);
      }
    }
  }

  async restartStatus(): Promise<readonly WorkloadRollout[]> {
    const { apps, custom } = await this.getClients();
    const namespace = this.options.namespace;
    return Promise.all(
      (this.options.restart ?? []).map(async ({ kind, name }) => {
        const read = (): Promise<unknown> => {
          switch (kind) {
            case 'Deployment':
              return apps.readNamespacedDeployment({ name, namespace });
            case 'StatefulSet':
              return apps.readNamespacedStatefulSet({ name, namespace });
            case 'DaemonSet':
              return apps.readNamespacedDaemonSet({ name, namespace });
            case 'Rollout':
              return custom.getNamespacedCustomObject({ ...ARGO, namespace, name });
          }
        };
        let object: WorkloadObject;
        try {
          object = (await withRetries(read, isTransient, this.options.retry)) as WorkloadObject;
        } catch (error) {
          this.fail(`read of ${kind} ${namespace}/${name}`, error);
        }
        return { target: this.options.target, workload: `${kind} ${namespace}/${name}`, ...rolloutOf(kind, object) };
      }),
    );
  }

  /**
   * An Event on the Secret and on each workload it restarts: `kubectl describe` on any of them lists
   * what stem-rotor did. Every object gets its Event; the first failure is then reported.
   */
  async recordEvent(event: RingEvent): Promise<void> {
    const { core } = await this.getClients();
    const now = (this.options.now ?? (() => new Date()))();
    const { namespace } = this.options;
    const objects = [
      { apiVersion: 'v1', kind: 'Secret', name: this.options.name, namespace },
      ...(this.options.restart ?? []).map(({ kind, name }) => ({ apiVersion: kind === 'Rollout' ? `${ARGO.group}/${ARGO.version}` : 'apps/v1', kind, name, namespace })),
    ];
    const outcomes = await Promise.allSettled(
      objects.map((involvedObject) =>
        core.createNamespacedEvent({
          namespace,
          body: {
            metadata: { generateName: `${involvedObject.name}.stem-rotor.`, namespace },
            involvedObject,
            type: event.type,
            reason: event.reason,
            message: event.message,
            source: { component: 'stem-rotor' },
            reportingComponent: 'stem-rotor',
            reportingInstance: 'stem-rotor',
            action: event.reason,
            firstTimestamp: now,
            lastTimestamp: now,
            eventTime: now as never,
            count: 1,
          },
        }),
      ),
    );
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) this.fail('event on', failed.reason);
  }
}

export default function createKubernetesSecretProvider(options: KubernetesSecretOptions): Provider {
  return new KubernetesSecretProvider(options);
}

/**
 * A Kubernetes API emulator for the calls the kubernetes-secret provider makes, following the API's
 * documented behaviour: Secrets GET/PUT with `metadata.resourceVersion` optimistic concurrency (409
 * Conflict "the object has been modified"), workloads (Deployments, StatefulSets, DaemonSets, Argo
 * Rollouts) GET and PATCH with `application/merge-patch+json` (415 otherwise) — a template change
 * bumps `metadata.generation` and the controller's status follows (at once, or when the test says,
 * with `holdRollouts`) — Events POST, bearer-token auth (401), RBAC denials (403), `Status` error
 * bodies. Fault injection: latency, 429 with Retry-After, 5xx, a concurrent update (stale
 * resourceVersion), a connection reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/fs.js';
import { HttpEmulator } from './http-emulator.js';

export type KubernetesFault =
  | { readonly kind: 'status'; readonly status: 429 | 500 | 503; readonly method?: string }
  | { readonly kind: 'concurrent-update'; readonly data: Record<string, string> }
  | { readonly kind: 'reset' };

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Rollout';
const KINDS = { deployments: 'Deployment', statefulsets: 'StatefulSet', daemonsets: 'DaemonSet', rollouts: 'Rollout' } as const;

/** A controller that has seen the new generation and is replacing pods: none updated yet. */
function begin(stored: StoredObject): void {
  const { body } = stored;
  const replicas = (body.spec as { replicas: number }).replicas;
  const generation = body.metadata.generation as number;
  if (body.kind === 'Rollout') body.status = { ...(body.status as object), phase: 'Progressing', observedGeneration: String(generation) };
  else if (body.kind === 'DaemonSet') body.status = { observedGeneration: generation, desiredNumberScheduled: replicas, updatedNumberScheduled: 0, numberAvailable: replicas };
  else body.status = { observedGeneration: generation, replicas, updatedReplicas: 0, readyReplicas: replicas, availableReplicas: replicas, ...(body.kind === 'StatefulSet' ? { currentRevision: `r${generation - 1}`, updateRevision: `r${generation}` } : {}) };
}

/** The controller finished: every pod from the current template, all available. */
function settle(stored: StoredObject): void {
  const { body } = stored;
  const replicas = (body.spec as { replicas: number }).replicas;
  const generation = body.metadata.generation as number;
  if (body.kind === 'Rollout') {
    const restartAt = (body.spec as { restartAt?: string }).restartAt;
    body.status = { phase: 'Healthy', observedGeneration: String(generation), ...(restartAt ? { restartedAt: restartAt } : {}) };
  } else if (body.kind === 'DaemonSet') body.status = { observedGeneration: generation, desiredNumberScheduled: replicas, updatedNumberScheduled: replicas, numberAvailable: replicas };
  else body.status = { observedGeneration: generation, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas, ...(body.kind === 'StatefulSet' ? { currentRevision: `r${generation}`, updateRevision: `r${generation}` } : {}) };
}

interface StoredObject {
  body: Record<string, unknown> & { metadata: Record<string, unknown> };
}

export class KubernetesEmulator extends HttpEmulator {
  token = 'k8s-test-token';
  private resourceVersion = 1000;
  readonly secrets = new Map<string, StoredObject>();
  /** Workloads by `kind namespace/name` (Deployment, StatefulSet, DaemonSet, Rollout). */
  readonly workloads = new Map<string, StoredObject>();
  /** Events created, in order. */
  readonly events: Record<string, unknown>[] = [];
  /** While true, a restarted workload's controller has not finished rolling it (`finishRollouts` ends that). */
  holdRollouts = false;
  /** "verb resource/name" pairs the token may not use, e.g. "update secrets/stem". */
  readonly forbidden = new Set<string>();
  readonly faults: KubernetesFault[] = [];
  readonly requests: { method: string; path: string; contentType: string; body: string }[] = [];


  /** A kubeconfig file pointing at this emulator. */
  kubeconfig(token = this.token): string {
    const path = join(tempDir('stem-rotor-kube-'), 'config');
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: emu\n  cluster:\n    server: http://127.0.0.1:${this.port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: emu\n  context:\n    cluster: emu\n    user: rotor\ncurrent-context: emu\nusers:\n- name: rotor\n  user:\n    token: ${token}\n`,
    );
    return path;
  }

  putSecret(namespace: string, name: string, stringData: Record<string, string>, extra: Record<string, unknown> = {}): void {
    const data = Object.fromEntries(Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
    this.secrets.set(`${namespace}/${name}`, { body: { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', ...extra, metadata: { name, namespace, resourceVersion: String(++this.resourceVersion), labels: { app: 'stem' } }, data } });
  }

  secretData(namespace: string, name: string): Record<string, string> {
    const data = (this.secrets.get(`${namespace}/${name}`)?.body.data ?? {}) as Record<string, string>;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }

  putDeployment(namespace: string, name: string): void {
    this.putWorkload('Deployment', namespace, name);
  }

  putWorkload(kind: WorkloadKind, namespace: string, name: string, replicas = 2): void {
    const body = { apiVersion: kind === 'Rollout' ? 'argoproj.io/v1alpha1' : 'apps/v1', kind, metadata: { name, namespace, generation: 1, resourceVersion: String(++this.resourceVersion) }, spec: { replicas, template: { metadata: { annotations: {} } } }, status: {} };
    const stored = { body };
    this.workloads.set(`${kind} ${namespace}/${name}`, stored);
    settle(stored);
  }

  workload(kind: WorkloadKind, namespace: string, name: string): StoredObject['body'] & { spec: Record<string, any>; status: Record<string, any> } {
    return this.workloads.get(`${kind} ${namespace}/${name}`)?.body as never;
  }

  /** The controllers catch up: every held rollout finishes. */
  finishRollouts(): void {
    for (const stored of this.workloads.values()) settle(stored);
  }

  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    const contentType = String(request.headers['content-type'] ?? '');
    this.requests.push({ method, path, contentType, body });
    const reply = (code: number, json: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(code, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify(json));
    };
    const status = (code: number, reason: string, message: string, headers: Record<string, string> = {}) =>
      reply(code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }, headers);

    const fault = this.faults[0];
    if (fault?.kind === 'reset') {
      this.faults.shift();
      request.socket.destroy();
      return;
    }
    if (fault?.kind === 'status' && (!fault.method || fault.method === method)) {
      this.faults.shift();
      if (fault.status === 429) return status(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later', { 'retry-after': '1' });
      return status(fault.status, 'InternalError', 'an error on the server has prevented the request from succeeding');
    }
    if (request.headers.authorization !== `Bearer ${this.token}`) return status(401, 'Unauthorized', 'Unauthorized');

    const secret = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(path);
    const workload = /^\/apis\/(?:apps\/v1|argoproj\.io\/v1alpha1)\/namespaces\/([^/]+)\/(deployments|statefulsets|daemonsets|rollouts)\/([^/]+)$/.exec(path);
    const events = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(path);
    const verb = method === 'GET' ? 'get' : method === 'PUT' ? 'update' : method === 'PATCH' ? 'patch' : method.toLowerCase();
    if (secret) {
      const [, namespace, name] = secret;
      if (this.forbidden.has(`${verb} secrets/${name}`)) return status(403, 'Forbidden', `secrets "${name}" is forbidden: User "system:serviceaccount:stem:rotor" cannot ${verb} resource "secrets" in API group "" in the namespace "${namespace}"`);
      const key = `${namespace}/${name}`;
      const stored = this.secrets.get(key);
      if (!stored) return status(404, 'NotFound', `secrets "${name}" not found`);
      if (method === 'GET') return reply(200, stored.body);
      if (method === 'PUT') {
        if (fault?.kind === 'concurrent-update') {
          this.faults.shift();
          this.putSecret(namespace as string, name as string, fault.data);
        }
        const incoming = JSON.parse(body) as StoredObject['body'];
        const current = this.secrets.get(key) as StoredObject;
        if (incoming.metadata?.resourceVersion !== current.body.metadata.resourceVersion) {
          return status(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`);
        }
        const next = { ...incoming, metadata: { ...incoming.metadata, resourceVersion: String(++this.resourceVersion) } };
        this.secrets.set(key, { body: next });
        return reply(200, next);
      }
      return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
    if (workload) {
      const [, namespace, plural, name] = workload as unknown as [string, string, keyof typeof KINDS, string];
      const kind = KINDS[plural];
      if (this.forbidden.has(`${verb} ${plural}/${name}`)) return status(403, 'Forbidden', `${plural} "${name}" is forbidden: User "system:serviceaccount:stem:rotor" cannot ${verb} resource "${plural}" in the namespace "${namespace}"`);
      const stored = this.workloads.get(`${kind} ${namespace}/${name}`);
      if (!stored) return status(404, 'NotFound', `${plural} "${name}" not found`);
      if (method === 'GET') return reply(200, stored.body);
      if (method !== 'PATCH') return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      if (!contentType.startsWith('application/merge-patch+json') && !contentType.startsWith('application/strategic-merge-patch+json')) {
        return status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
      }
      const patch = JSON.parse(body) as { spec?: Record<string, any> };
      const spec = stored.body.spec as Record<string, any>;
      Object.assign(spec.template.metadata.annotations, patch.spec?.template?.metadata?.annotations ?? {});
      if (patch.spec?.restartAt !== undefined) spec.restartAt = patch.spec.restartAt;
      stored.body.metadata.generation = (stored.body.metadata.generation as number) + 1;
      stored.body.metadata.resourceVersion = String(++this.resourceVersion);
      begin(stored);
      if (!this.holdRollouts) settle(stored);
      return reply(200, stored.body);
    }
    if (events && method === 'POST') {
      if (this.forbidden.has('create events')) return status(403, 'Forbidden', 'events is forbidden: User "system:serviceaccount:stem:rotor" cannot create resource "events"');
      const event = JSON.parse(body) as Record<string, any>;
      const created = { ...event, metadata: { ...event.metadata, name: event.metadata?.name ?? `event-${this.resourceVersion}`, resourceVersion: String(++this.resourceVersion) } };
      this.events.push(created);
      return reply(201, created);
    }
    return status(404, 'NotFound', 'the server could not find the requested resource');
  }
}

/** kubernetes-secret through the real @kubernetes/client-node against the Kubernetes API emulator. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import createKubernetesSecretProvider, { type KubernetesSecretOptions } from '../../providers/kubernetes-secret.js';
import { ConfigError, ConflictError } from '../../src/errors.js';
import { KubernetesEmulator } from '../emulators/kubernetes.js';

let kube: KubernetesEmulator;
let kubeconfig: string;
const FIELDS = ['STEM_SIGNING_KEYS', 'STEM_SIGNING_ACTIVE_KEY'];
const noWait = { sleep: async () => undefined };

beforeAll(async () => {
  kube = await new KubernetesEmulator().start();
  kubeconfig = kube.kubeconfig();
});
afterAll(() => kube.stop());
beforeEach(() => {
  kube.secrets.clear();
  kube.faults.length = 0;
  kube.forbidden.clear();
  kube.holdRollouts = false;
  kube.workloads.clear();
  kube.events.length = 0;
  kube.putSecret('stem', 'signing', { STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1', DATABASE_URL: 'postgres://keep' });
  kube.putDeployment('stem', 'workers');
});

const provider = (options: Partial<KubernetesSecretOptions> = {}) =>
  createKubernetesSecretProvider({ target: 'kube', namespace: 'stem', name: 'signing', kubeconfig, retry: noWait, now: () => new Date('2026-11-28T10:00:00.000Z'), ...options });

describe('kubernetes-secret provider', () => {
  it('reads base64 data; replaces with the read resourceVersion, keeping other keys and labels', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    expect(snapshot.fields).toEqual({ STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k1' });
    expect(snapshot.version).toMatch(/^rv:\d+$/);
    const written = await target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(written.version).not.toBe(snapshot.version);
    expect(kube.secretData('stem', 'signing')).toEqual({ STEM_SIGNING_KEYS: 'k1:YQ==', STEM_SIGNING_ACTIVE_KEY: 'k2', DATABASE_URL: 'postgres://keep' });
    expect((kube.secrets.get('stem/signing')?.body.metadata as { labels?: unknown }).labels).toEqual({ app: 'stem' });
    const put = kube.requests.find((r) => r.method === 'PUT');
    expect(JSON.parse(put?.body ?? '{}').metadata.resourceVersion).toBe(snapshot.version.slice(3));
  });

  it('409 on a concurrent update is a ConflictError; so is a stale expected version', async () => {
    const target = provider();
    const snapshot = await target.read(FIELDS);
    kube.faults.push({ kind: 'concurrent-update', data: { STEM_SIGNING_KEYS: 'other:YQ==' } });
    await expect(target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toBeInstanceOf(ConflictError);
    expect(kube.secretData('stem', 'signing')).toEqual({ STEM_SIGNING_KEYS: 'other:YQ==' });
    await expect(target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toThrow(/expected rv:/);
  });

  it('rolls listed Deployments as its after-write step with the kubectl restartedAt annotation (merge patch); the write alone does not', async () => {
    const target = provider({ restart: [{ kind: 'Deployment', name: 'workers' }] });
    const snapshot = await target.read(FIELDS);
    const before = kube.requests.length;
    await target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    // planned on the Secret just read: the update alone, carrying its resourceVersion
    expect(kube.requests.slice(before).map((r) => r.method)).toEqual(['PUT']);
    expect(kube.requests.some((r) => r.method === 'PATCH')).toBe(false);
    await target.afterWrite?.();
    const spec = kube.workloads.get('Deployment stem/workers')?.body.spec as { template: { metadata: { annotations: Record<string, string> } } };
    expect(spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe('2026-11-28T10:00:00.000Z');
    expect(kube.requests.find((r) => r.method === 'PATCH')?.contentType).toMatch(/^application\/merge-patch\+json/);
  });

  it('restarts StatefulSets, DaemonSets and Argo Rollouts too, and reports each rollout as its controller does', async () => {
    kube.putWorkload('StatefulSet', 'stem', 'beat', 1);
    kube.putWorkload('DaemonSet', 'stem', 'agents', 3);
    kube.putWorkload('Rollout', 'stem', 'api', 2);
    const restart = [
      { kind: 'Deployment', name: 'workers' },
      { kind: 'StatefulSet', name: 'beat' },
      { kind: 'DaemonSet', name: 'agents' },
      { kind: 'Rollout', name: 'api' },
    ] as const;
    const target = provider({ restart });
    expect((await target.restartStatus?.())?.every((rollout) => rollout.done)).toBe(true);
    kube.holdRollouts = true;
    await target.afterWrite?.();
    expect(kube.workload('StatefulSet', 'stem', 'beat').spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe('2026-11-28T10:00:00.000Z');
    expect(kube.workload('DaemonSet', 'stem', 'agents').spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe('2026-11-28T10:00:00.000Z');
    expect(kube.workload('Rollout', 'stem', 'api').spec.restartAt).toBe('2026-11-28T10:00:00Z');
    const rolling = (await target.restartStatus?.()) ?? [];
    expect(rolling.map((rollout) => [rollout.workload, rollout.done])).toEqual([
      ['Deployment stem/workers', false],
      ['StatefulSet stem/beat', false],
      ['DaemonSet stem/agents', false],
      ['Rollout stem/api', false],
    ]);
    expect(rolling[0]?.detail).toBe('generation 2/2, 0/2 updated, 2 available');
    expect(rolling[3]?.detail).toBe('phase Progressing, restartedAt none (asked 2026-11-28T10:00:00Z)');
    kube.finishRollouts();
    expect(((await target.restartStatus?.()) ?? []).map((rollout) => rollout.done)).toEqual([true, true, true, true]);
    kube.forbidden.add('get statefulsets/beat');
    await expect(target.restartStatus?.()).rejects.toThrow(/read of StatefulSet stem\/beat/);
  });

  it('records Events on the Secret and the workloads it restarts, for kubectl describe', async () => {
    await provider({ restart: [{ kind: 'Deployment', name: 'workers' }, { kind: 'Rollout', name: 'api' }] }).recordEvent?.({ type: 'Warning', reason: 'GateBlocked', message: 'activate blocked: stem-workers (wait)' });
    expect(kube.events.map((event) => event.involvedObject)).toEqual([
      { apiVersion: 'v1', kind: 'Secret', name: 'signing', namespace: 'stem' },
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'workers', namespace: 'stem' },
      { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'api', namespace: 'stem' },
    ]);
    expect(kube.events[0]).toMatchObject({ type: 'Warning', reason: 'GateBlocked', message: 'activate blocked: stem-workers (wait)', source: { component: 'stem-rotor' } });
    kube.forbidden.add('create events');
    await expect(provider().recordEvent?.({ type: 'Normal', reason: 'PhaseChanged', message: 'x' })).rejects.toThrow(/forbidden/);
  });

  it('clear errors: not found, forbidden by RBAC, unauthorized, no kubeconfig', async () => {
    await expect(provider({ name: 'missing' }).read(FIELDS)).rejects.toBeInstanceOf(ConfigError);
    kube.forbidden.add('update secrets/signing');
    const snapshot = await provider().read(FIELDS);
    await expect(provider().write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: snapshot.version, idempotencyKey: 'x' })).rejects.toThrow(/forbidden \(the Role needs get, update on secrets\/signing\)/);
    await expect(provider({ kubeconfig: kube.kubeconfig('wrong-token') }).read(FIELDS)).rejects.toThrow(/unauthorized/);
    await expect(provider({ kubeconfig: '/nonexistent/kubeconfig' }).read(FIELDS)).rejects.toThrow(/cannot load the kubeconfig/);
  });

  it('retries throttling, 5xx and connection resets; gives up after a bounded number of attempts', async () => {
    kube.faults.push({ kind: 'status', status: 429 }, { kind: 'status', status: 503 }, { kind: 'reset' });
    expect((await provider().read(FIELDS)).fields.STEM_SIGNING_ACTIVE_KEY).toBe('k1');
    kube.faults.push(...Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 500 as const })));
    await expect(provider().read(FIELDS)).rejects.toThrow(/HTTP 500/);
  });
});

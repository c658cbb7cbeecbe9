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
    const target = provider({ restartDeployments: ['workers'] });
    const snapshot = await target.read(FIELDS);
    await target.write({ set: { STEM_SIGNING_ACTIVE_KEY: 'k2' }, expectedVersion: snapshot.version, idempotencyKey: 'x' });
    expect(kube.requests.some((r) => r.method === 'PATCH')).toBe(false);
    await target.afterWrite?.();
    const spec = kube.deployments.get('stem/workers')?.body.spec as { template: { metadata: { annotations: Record<string, string> } } };
    expect(spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe('2026-11-28T10:00:00.000Z');
    expect(kube.requests.find((r) => r.method === 'PATCH')?.contentType).toMatch(/^application\/merge-patch\+json/);
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

/** A ring spanning a dotenv file and a Vault KV v2 secret: rotation, revoke, concurrent edits, no leaks. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStoreDir, parseConfig } from '../../src/config/load.js';
import type { RingConfig } from '../../src/config/schema.js';
import { RingEngine, type EngineDeps } from '../../src/engine/engine.js';
import { createProvider } from '../../providers/index.js';
import type { Provider } from '../../providers/types.js';
import type { StateStore } from '../../src/store/types.js';
import { PartialFailureError, TargetContentError } from '../../src/errors.js';
import { generateKey } from '../../src/stem/keys.js';
import { formatKeyList, loadStemSigningConfig } from '../../src/stem/signing-env.js';
import { createFileStore } from '../../src/store/file.js';
import { cliAsync, findLeaks } from '../helpers/cli.js';
import { SimulatedClock } from '../helpers/clock.js';
import { tempDir } from '../helpers/fs.js';
import { seededRandom } from '../helpers/random.js';
import { VaultEmulator } from '../emulators/vault.js';
import { KubernetesEmulator } from '../emulators/kubernetes.js';
import { AwsSecretsManagerEmulator } from '../emulators/aws-secrets-manager.js';

let vault: VaultEmulator;
let kube: KubernetesEmulator;
let aws: AwsSecretsManagerEmulator;
beforeAll(async () => {
  aws = await new AwsSecretsManagerEmulator().start();
  process.env.AWS_ACCESS_KEY_ID = 'AKIATEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
  vault = await new VaultEmulator().start();
  kube = await new KubernetesEmulator().start();
  process.env.VAULT_TOKEN = 'root-token';
});
afterAll(async () => {
  delete process.env.VAULT_TOKEN;
  await vault.stop();
  await kube.stop();
  await aws.stop();
});

function setup(path: string) {
  const dir = tempDir('stem-rotor-mixed-');
  const key = generateKey('hmac-sha256', 'mixed-20260101-0001', seededRandom(path));
  const keys = formatKeyList([{ id: key.id, material: key.secret as Buffer }]);
  writeFileSync(join(dir, 'producers.env'), `APP=1\nSTEM_SIGNING_KEYS=${keys}\nSTEM_SIGNING_ACTIVE_KEY=${key.id}\n`);
  vault.namespaces.clear();
  vault.mount('secret');
  vault.put('secret', path, { SIGNING_KEYS: keys, SIGNING_ACTIVE: key.id, DATABASE_URL: 'postgres://keep' });
  const secret = path.replace(/\//g, '-');
  kube.putSecret('stem', secret, { STEM_SIGNING_KEYS: keys, STEM_SIGNING_ACTIVE_KEY: key.id, OTHER: 'keep' });
  kube.putDeployment('stem', 'beat');
  aws.create(path, { STEM_SIGNING_KEYS: keys, STEM_SIGNING_ACTIVE_KEY: key.id, STEM_SIGNING_ALGORITHM: 'hmac-sha256', DB_PASSWORD: 'keep' });
  const document = {
    store: { type: 'file', dir: 'state' },
    rings: {
      mixed: {
        keyIdPrefix: 'mixed-',
        targets: [
          { name: 'producers', provider: 'dotenv', path: 'producers.env' },
          { name: 'workers', provider: 'vault-kv2', address: vault.address, mount: 'secret', path, fields: { STEM_SIGNING_KEYS: 'SIGNING_KEYS', STEM_SIGNING_ACTIVE_KEY: 'SIGNING_ACTIVE', STEM_SIGNING_ALGORITHM: 'SIGNING_ALG' } },
          { name: 'beat', provider: 'kubernetes-secret', kubeconfig: kube.kubeconfig(), namespace: 'stem', secret, restartDeployments: ['beat'] },
          { name: 'dashboard', provider: 'aws-secrets-manager', secretId: path, region: 'eu-west-1', endpoint: aws.endpoint },
        ],
      },
    },
  };
  writeFileSync(join(dir, 'stem-rotor.json'), JSON.stringify(document));
  const config = parseConfig(document, join(dir, 'stem-rotor.json'));
  const clock = new SimulatedClock();
  const store = createFileStore({ dir: fileStoreDir(config), clock });
  const engine = (deps: Partial<EngineDeps> = {}) => new RingEngine(config.rings[0] as RingConfig, { store, clock, randomBytes: seededRandom(`${path}:run`), actor: { user: 't', host: 'h' }, ...deps });
  const vaultConfig = () => {
    const data = vault.current('secret', path)?.data as Record<string, string>;
    return loadStemSigningConfig({ STEM_SIGNING_KEYS: data.SIGNING_KEYS, STEM_SIGNING_ACTIVE_KEY: data.SIGNING_ACTIVE, STEM_SIGNING_ALGORITHM: data.SIGNING_ALG });
  };
  const kubeConfig = () => {
    const data = kube.secretData('stem', secret);
    return loadStemSigningConfig({ STEM_SIGNING_KEYS: data.STEM_SIGNING_KEYS, STEM_SIGNING_ACTIVE_KEY: data.STEM_SIGNING_ACTIVE_KEY });
  };
  const awsConfig = () => {
    const data = aws.current(path)?.data as Record<string, string>;
    return loadStemSigningConfig({ STEM_SIGNING_KEYS: data.STEM_SIGNING_KEYS, STEM_SIGNING_ACTIVE_KEY: data.STEM_SIGNING_ACTIVE_KEY });
  };
  return { dir, key, clock, engine, store, vaultConfig, kubeConfig, awsConfig, secret };
}

describe('a ring spanning dotenv, Vault, Kubernetes and AWS Secrets Manager', () => {
  it('rotates through every phase, each store versioned and its other fields kept', async () => {
    const { key, clock, engine, vaultConfig, kubeConfig, awsConfig, secret } = setup('stem/rotate');
    const started = await engine().start();
    const newId = started.newKey?.id as string;
    expect([...vaultConfig().verificationKeys.keys()]).toEqual([key.id, newId]);
    clock.increment(10 * 60_000);
    await engine().advance();
    expect(vaultConfig().activeKeyId).toBe(newId);
    clock.increment(60 * 60_000);
    await engine().advance();
    expect([...vaultConfig().verificationKeys.keys()]).toEqual([newId]);
    expect([...kubeConfig().verificationKeys.keys()]).toEqual([newId]);
    expect(kubeConfig().activeKeyId).toBe(newId);
    expect([...awsConfig().verificationKeys.keys()]).toEqual([newId]);
    expect(aws.current('stem/rotate')?.data.DB_PASSWORD).toBe('keep');
    expect(kube.secretData('stem', secret).OTHER).toBe('keep');
    const beat = kube.workloads.get('Deployment stem/beat')?.body.spec as { template: { metadata: { annotations: Record<string, string> } } };
    expect(beat.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBeDefined();
    expect(vault.current('secret', 'stem/rotate')?.data.DATABASE_URL).toBe('postgres://keep');
    const status = await engine().status();
    expect(status.targets).toEqual([
      expect.objectContaining({ name: 'producers', provider: 'dotenv', inSync: true }),
      expect.objectContaining({ name: 'workers', provider: 'vault-kv2', inSync: true, version: expect.stringMatching(/^kv2:\d+$/) }),
      expect.objectContaining({ name: 'beat', provider: 'kubernetes-secret', inSync: true, version: expect.stringMatching(/^rv:\d+$/) }),
      expect.objectContaining({ name: 'dashboard', provider: 'aws-secrets-manager', inSync: true, version: expect.stringMatching(/^aws:[0-9a-f-]{36}$/) }),
    ]);
  });

  it('revokes the active key in every store in one fan-out', async () => {
    const { dir, key, engine, vaultConfig, kubeConfig, awsConfig } = setup('stem/revoke');
    const result = await engine().revoke(key.id, { reason: 'leak' });
    const fresh = result.transition?.desired.activeKeyId as string;
    expect([...vaultConfig().verificationKeys.keys()]).toEqual([fresh]);
    expect([...kubeConfig().verificationKeys.keys()]).toEqual([fresh]);
    expect([...awsConfig().verificationKeys.keys()]).toEqual([fresh]);
    expect(readFileSync(join(dir, 'producers.env'), 'utf8')).toContain(`STEM_SIGNING_ACTIVE_KEY=${fresh}`);
  });

  it('a write acknowledged but lost or replaced is never recorded as verified; the command names the target (exit 5) and a re-run converges', async () => {
    for (const kind of ['lost-write', 'other-write'] as const) {
      const path = `stem/readback-${kind}`;
      const { engine, store, vaultConfig, key } = setup(path);
      const before = { ...(vault.current('secret', path)?.data as Record<string, unknown>) };
      vault.faults.push(kind === 'lost-write' ? { kind } : { kind, data: before });
      const error = await engine().start().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PartialFailureError);
      expect((error as PartialFailureError).exitCode).toBe(5);
      expect((error as Error).message).toMatch(/written producers; failed workers \(target "workers": read-back after the write does not match/);
      const state = await store.load('mixed');
      expect(state?.transition?.writes.workers?.status).toBe('failed');
      expect(state?.transition?.writes.producers?.status).toBe('verified');
      expect([...vaultConfig().verificationKeys.keys()]).toEqual([key.id]);
      const resumed = await engine().advance();
      expect(resumed.outcome).toBe('resumed');
      expect([...vaultConfig().verificationKeys.keys()]).toEqual([key.id, resumed.newKey?.id]);
      expect((await store.load('mixed'))?.transition).toBeNull();
    }
  });

  it('a rollout restart that fails after the Secret was updated is a recorded step: the resumed command restarts, never skips it', async () => {
    const { engine, store, kubeConfig, key } = setup('stem/restart');
    kube.forbidden.add('patch deployments/beat');
    const error = await engine().start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartialFailureError);
    expect((error as Error).message).toMatch(/failed beat \(target "beat": rollout restart of Deployment stem\/beat after writing .*forbidden/);
    const beat = () => kube.workloads.get('Deployment stem/beat')?.body.spec as { template: { metadata?: { annotations?: Record<string, string> } } };
    expect(beat().template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBeUndefined();
    expect([...kubeConfig().verificationKeys.keys()]).toHaveLength(2); // the Secret itself was written
    expect((await store.load('mixed'))?.transition?.writes.beat).toMatchObject({ status: 'failed', afterWrite: 'pending' });
    kube.forbidden.delete('patch deployments/beat');
    const resumed = await engine().advance();
    expect(resumed.outcome).toBe('resumed');
    expect(beat().template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBeDefined();
    expect((await store.load('mixed'))?.transition).toBeNull();
    expect([...kubeConfig().verificationKeys.keys()]).toEqual([key.id, resumed.newKey?.id]);
  });

  it('a Vault secret changed by someone else mid-rotation is detected and never overwritten blindly', async () => {
    const { clock, engine } = setup('stem/tamper');
    await engine().start();
    clock.increment(10 * 60_000);
    const foreign = generateKey('hmac-sha256', 'intruder', seededRandom('intruder'));
    vault.put('secret', 'stem/tamper', { SIGNING_KEYS: formatKeyList([{ id: 'intruder', material: foreign.secret as Buffer }]), SIGNING_ACTIVE: 'intruder' });
    await expect(engine().advance()).rejects.toBeInstanceOf(TargetContentError);
    expect(vault.current('secret', 'stem/tamper')?.data.SIGNING_ACTIVE).toBe('intruder');
  });

  it('through the CLI with node-vault debugging switched on, no key material reaches any output', async () => {
    const { dir } = setup('stem/cli');
    const config = join(dir, 'stem-rotor.json');
    const env = { VAULT_TOKEN: 'root-token', DEBUG: '*', AWS_ACCESS_KEY_ID: 'AKIATEST', AWS_SECRET_ACCESS_KEY: 'test-secret' };
    const outputs = [
      await cliAsync(['rotate', 'start', 'mixed', '--config', config], { env }),
      await cliAsync(['status', 'mixed', '--config', config, '--json'], { env }),
      await cliAsync(['revoke', 'mixed', 'mixed-20260101-0001', '--reason', 'x', '--yes', '--config', config], { env }),
    ];
    expect(outputs.map((o) => o.code), outputs.map((o) => o.stderr.slice(-400)).join('\n')).toEqual([0, 0, 0]);
    const secrets = vault.requests.filter((r) => r.method === 'POST' && r.path.includes('/data/')).flatMap((r) => {
      const keys = String((JSON.parse(r.body) as { data: Record<string, string> }).data.SIGNING_KEYS ?? '');
      return keys.split(',').map((entry) => entry.split(':')[1] ?? '').filter(Boolean);
    });
    expect(secrets.length).toBeGreaterThan(2);
    expect(findLeaks(secrets, outputs.flatMap((o) => [o.stdout, o.stderr]))).toEqual([]);
  });
});

describe('stderr stays machine-readable', () => {
  it("library warnings (the AWS SDK's NodeVersionSupportWarning) come out as JSON log lines like everything else", async () => {
    const { dir } = setup('stem/warnings');
    const env = { VAULT_TOKEN: 'root-token', AWS_ACCESS_KEY_ID: 'AKIATEST', AWS_SECRET_ACCESS_KEY: 'test-secret' };
    const result = await cliAsync(['rotate', 'start', 'mixed', '--config', join(dir, 'stem-rotor.json')], { env });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.some((line) => (JSON.parse(line) as { msg: string }).msg.includes('NodeVersionSupportWarning'))).toBe(process.versions.node.startsWith('20.'));
  });
});

class Crash extends Error {}

/** After a crash nothing the dead process does takes effect, and it never releases its lease. */
function dying(crashAt: { write: number; when: 'before' | 'after' }, counter: { writes: number }) {
  const process = { dead: false };
  const alive = <T>(action: () => T): T => {
    if (process.dead) throw new Crash('dead');
    return action();
  };
  const providerFor = async (target: Parameters<typeof createProvider>[0]): Promise<Provider> => {
    const real = await createProvider(target);
    return {
      providerName: real.providerName,
      location: real.location,
      read: (fields) => alive(() => real.read(fields)),
      async write(request) {
        const index = alive(() => counter.writes++);
        if (index === crashAt.write && crashAt.when === 'before') {
          process.dead = true;
          throw new Crash('before');
        }
        const result = await real.write(request);
        if (index === crashAt.write) {
          process.dead = true;
          throw new Crash('after');
        }
        return result;
      },
    };
  };
  const storeOf = (store: StateStore): StateStore => ({
    load: (ring) => alive(() => store.load(ring)),
    save: (...args) => alive(() => store.save(...args)),
    acquire: (...args) => alive(() => store.acquire(...args)),
    release: async (lease) => (process.dead ? undefined : store.release(lease)),
    appendAudit: (event) => alive(() => store.appendAudit(event)),
    readAudit: (ring) => alive(() => store.readAudit(ring)),
    verifyAudit: () => store.verifyAudit(),
    residue: (ring) => store.residue(ring),
    close: () => store.close(),
  });
  return { providerFor, storeOf };
}

describe('crash and resume at every target write of a four-provider rotation', () => {
  const plans = Array.from({ length: 12 }, (_, write) => [{ write, when: 'before' as const }, { write, when: 'after' as const }]).flat();
  it.each(plans)('crash $when write $write, then the next command converges', async (plan) => {
    const { clock, engine, store, vaultConfig, kubeConfig, awsConfig, dir } = setup(`stem/crash-${plan.write}-${plan.when}`);
    const counter = { writes: 0 };
    const first = dying(plan, counter);
    let current = engine({ providerFor: first.providerFor, store: first.storeOf(store), leaseTtlMs: 60_000 });
    const steps: ('start' | 'advance')[] = ['start', 'advance', 'advance'];
    for (const [index, step] of steps.entries()) {
      if (index > 0) clock.increment(index === 1 ? 10 * 60_000 : 60 * 60_000);
      try {
        await current[step]();
      } catch (error) {
        if (!(error instanceof Crash)) throw error;
        clock.increment(60_001);
        current = engine();
        const resumed = await current.advance();
        expect(resumed.outcome).toBe('resumed');
      }
    }
    const status = await engine().status();
    expect(status.phase).toBe('stable');
    expect(status.targets.every((target) => target.inSync)).toBe(true);
    const ids = [vaultConfig(), kubeConfig(), awsConfig()].map((config) => [...config.verificationKeys.keys()]);
    expect(ids.every((list) => list.length === 1 && list[0] === status.keys[0]?.id)).toBe(true);
    expect(readFileSync(join(dir, 'producers.env'), 'utf8')).toContain(`STEM_SIGNING_ACTIVE_KEY=${status.keys[0]?.id}`);
  });
});

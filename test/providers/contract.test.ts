/** The provider contract against every provider: real clients against the emulators, a real file, and the in-memory reference. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import createAwsSecretsManagerProvider from '../../providers/aws-secrets-manager.js';
import createDotenvProvider from '../../providers/dotenv.js';
import createKubernetesSecretProvider from '../../providers/kubernetes-secret.js';
import createVaultKv2Provider from '../../providers/vault-kv2.js';
import { AwsSecretsManagerEmulator } from '../emulators/aws-secrets-manager.js';
import { KubernetesEmulator } from '../emulators/kubernetes.js';
import { VaultEmulator } from '../emulators/vault.js';
import { tempDir } from '../helpers/fs.js';
import { MemoryProvider } from '../helpers/memory-provider.js';
import { SEED, providerContract } from './contract.js';

const noWait = { sleep: async () => undefined };
let vault: VaultEmulator;
let aws: AwsSecretsManagerEmulator;
let kube: KubernetesEmulator;
let sequence = 0;

beforeAll(async () => {
  [vault, aws, kube] = await Promise.all([new VaultEmulator().start(), new AwsSecretsManagerEmulator().start(), new KubernetesEmulator().start()]);
  vault.mount('secret');
  process.env.AWS_ACCESS_KEY_ID = 'AKIATEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
});
afterAll(async () => {
  await Promise.all([vault.stop(), aws.stop(), kube.stop()]);
});

const asStrings = (data: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [key, String(value)]));

providerContract('in-memory reference', async () => {
  const provider = new MemoryProvider(`target-${++sequence}`, SEED);
  return { provider, all: async () => provider.all(), outside: async (set) => provider.outside(set) };
});

providerContract('dotenv', async () => {
  const path = join(tempDir('stem-rotor-contract-'), 'stem.env');
  const text = (fields: Record<string, string>) => Object.entries(fields).map(([key, value]) => `${key}=${value}\n`).join('');
  writeFileSync(path, `# kept by hand\n${text(SEED)}`, { mode: 0o600 });
  // the file holds plain KEY=value lines (what we wrote, and what a rewrite keeps)
  const all = async () => Object.fromEntries(readFileSync(path, 'utf8').split('\n').filter((line) => /^[A-Z_]+=/.test(line)).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  return { provider: createDotenvProvider({ target: 'dotenv', path }), all, outside: async (set) => writeFileSync(path, `# kept by hand\n${text({ ...(await all()), ...set })}`) };
});

providerContract('vault-kv2', async () => {
  const path = `stem/contract-${++sequence}`;
  vault.put('secret', path, SEED);
  return {
    provider: createVaultKv2Provider({ target: 'vault', mount: 'secret', path, address: vault.address, env: { VAULT_TOKEN: 'root-token' }, retry: noWait }),
    all: async () => asStrings(vault.current('secret', path)?.data),
    outside: async (set) => void vault.put('secret', path, { ...vault.current('secret', path)?.data, ...set }),
  };
});

providerContract('aws-secrets-manager', async () => {
  const name = `stem/contract-${++sequence}`;
  aws.create(name, SEED);
  return {
    provider: createAwsSecretsManagerProvider({ target: 'aws', secretId: name, region: 'eu-west-1', endpoint: aws.endpoint, retry: noWait }),
    all: async () => asStrings(aws.current(name)?.data),
    outside: async (set) => aws.putOutside(name, { ...aws.current(name)?.data, ...set }),
  };
});

providerContract('kubernetes-secret', async () => {
  const name = `contract-${++sequence}`;
  kube.putSecret('stem', name, SEED);
  kube.putDeployment('stem', `workers-${sequence}`);
  return {
    provider: createKubernetesSecretProvider({ target: 'kube', namespace: 'stem', name, kubeconfig: kube.kubeconfig(), restart: [{ kind: 'Deployment', name: `workers-${sequence}` }], retry: noWait, now: () => new Date('2026-11-28T10:00:00.000Z') }),
    all: async () => kube.secretData('stem', name),
    outside: async (set) => kube.putSecret('stem', name, { ...kube.secretData('stem', name), ...set }),
  };
});

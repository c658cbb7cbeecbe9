/** Provider registry: the config's `provider` key → a lazily imported factory, so unused SDKs never load. */
import type { TargetConfig } from '../src/config/schema.js';
import type { Provider, ProviderNotice } from './types.js';

export type { Provider, ProviderNotice, TargetSnapshot, WriteRequest } from './types.js';

export async function createProvider(target: TargetConfig, notice?: ProviderNotice): Promise<Provider> {
  switch (target.provider) {
    case 'dotenv': {
      const { default: createDotenvProvider } = await import('./dotenv.js');
      return createDotenvProvider({ target: target.name, path: target.path, dialect: target.dialect, ...(notice ? { notice } : {}) });
    }
    case 'vault-kv2': {
      const { default: createVaultKv2Provider } = await import('./vault-kv2.js');
      return createVaultKv2Provider({
        target: target.name,
        mount: target.mount,
        path: target.path,
        ...(target.address ? { address: target.address } : {}),
        ...(target.namespace ? { namespace: target.namespace } : {}),
        ...(target.caFile ? { caFile: target.caFile } : {}),
        ...(target.auth ? { auth: target.auth } : {}),
      });
    }
    case 'kubernetes-secret': {
      const { default: createKubernetesSecretProvider } = await import('./kubernetes-secret.js');
      return createKubernetesSecretProvider({
        target: target.name,
        namespace: target.namespace,
        name: target.secret,
        restart: [...target.restartDeployments.map((name) => ({ kind: 'Deployment' as const, name })), ...target.restart],
        ...(target.kubeconfig ? { kubeconfig: target.kubeconfig } : {}),
        ...(target.context ? { context: target.context } : {}),
      });
    }
    case 'aws-secrets-manager': {
      const { default: createAwsSecretsManagerProvider } = await import('./aws-secrets-manager.js');
      return createAwsSecretsManagerProvider({
        target: target.name,
        secretId: target.secretId,
        allowManagedRotation: target.allowManagedRotation,
        ...(target.region ? { region: target.region } : {}),
        ...(target.endpoint ? { endpoint: target.endpoint } : {}),
      });
    }
  }
}

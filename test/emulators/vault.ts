/**
 * A Vault HTTP emulator for the calls the vault-kv2 provider makes, following Vault's documented
 * behaviour: KV v2 `data/` reads and writes with `options.cas` (HTTP 400 "check-and-set parameter
 * did not match the current version"), `cas_required`, soft-deleted versions, a KV v1 mount,
 * `sys/internal/ui/mounts/<path>`, token auth (403 "permission denied"), AppRole login, namespaces
 * (X-Vault-Namespace). Fault injection: latency, 5xx, 429, a connection reset after the write is
 * applied, and a one-off concurrent write (CAS conflict).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpEmulator } from './http-emulator.js';

interface Version {
  data: Record<string, unknown>;
  deleted: boolean;
}

interface Mount {
  version: '1' | '2';
  casRequired: boolean;
  secrets: Map<string, Version[]>;
}

export type VaultFault =
  | { readonly kind: 'status'; readonly status: 429 | 500 | 503; readonly method?: 'GET' | 'POST' }
  | { readonly kind: 'reset-after-write' }
  | { readonly kind: 'concurrent-write'; readonly data: Record<string, unknown> }
  | { readonly kind: 'latency'; readonly ms: number }
  /** The write is acknowledged (200, a new version) but stores nothing: a misbehaving backend or proxy. */
  | { readonly kind: 'lost-write' }
  /** The write is acknowledged but something else is stored. */
  | { readonly kind: 'other-write'; readonly data: Record<string, unknown> };

export class VaultEmulator extends HttpEmulator {
  readonly tokens = new Set<string>(['root-token']);
  readonly approles = new Map<string, string>(); // role_id → secret_id
  readonly namespaces = new Map<string, Map<string, Mount>>();
  readonly faults: VaultFault[] = [];
  readonly requests: { method: string; path: string; body: string }[] = [];
  latencyMs = 0;

  /** Serve HTTPS with this certificate (call before start). */
  useTls(cert: Buffer, key: Buffer): this {
    this.tls = { cert, key };
    return this;
  }

  get address(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  mount(name: string, version: '1' | '2' = '2', options: { namespace?: string; casRequired?: boolean } = {}): void {
    const space = this.namespaces.get(options.namespace ?? '') ?? new Map<string, Mount>();
    space.set(name, { version, casRequired: options.casRequired ?? false, secrets: new Map() });
    this.namespaces.set(options.namespace ?? '', space);
  }

  /** Writes a new version directly, as another client would. */
  put(mount: string, path: string, data: Record<string, unknown>, namespace = ''): number {
    const versions = this.mountOf(namespace, mount)?.secrets;
    if (!versions) throw new Error(`no mount ${mount}`);
    const list = versions.get(path) ?? [];
    list.push({ data: { ...data }, deleted: false });
    versions.set(path, list);
    return list.length;
  }

  current(mount: string, path: string, namespace = ''): { version: number; data: Record<string, unknown> } | null {
    const list = this.mountOf(namespace, mount)?.secrets.get(path);
    const last = list?.[list.length - 1];
    return list && last ? { version: list.length, data: last.data } : null;
  }

  private mountOf(namespace: string, name: string): Mount | undefined {
    return this.namespaces.get(namespace)?.get(name);
  }


  protected async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const method = request.method ?? 'GET';
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    this.requests.push({ method, path, body });
    const reply = (status: number, json?: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(json === undefined ? '' : JSON.stringify(json));
    };
    const errors = (status: number, ...messages: string[]) => reply(status, { errors: messages });

    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const fault = this.faults[0];
    if (fault?.kind === 'latency') {
      this.faults.shift();
      await new Promise((resolve) => setTimeout(resolve, fault.ms));
    } else if (fault?.kind === 'status' && (!fault.method || fault.method === method) && !path.startsWith('/v1/auth/')) {
      this.faults.shift();
      errors(fault.status, fault.status === 429 ? 'rate limit quota exceeded' : 'internal error');
      return;
    }

    if (path.startsWith('/v1/auth/') && path.endsWith('/login') && method === 'POST') {
      const { role_id: roleId, secret_id: secretId } = JSON.parse(body || '{}') as { role_id?: string; secret_id?: string };
      if (!roleId || this.approles.get(roleId) !== secretId) return errors(400, 'invalid role or secret ID');
      const token = `approle-token-${this.tokens.size}`;
      this.tokens.add(token);
      return reply(200, { auth: { client_token: token, policies: ['stem-rotor'], lease_duration: 3600, renewable: true } });
    }
    if (!this.tokens.has(String(request.headers['x-vault-token'] ?? ''))) return errors(403, 'permission denied');
    const namespace = String(request.headers['x-vault-namespace'] ?? '').replace(/\/$/, '');
    if (!this.namespaces.has(namespace)) return errors(404, `namespace not found`);

    const mountsPrefix = '/v1/sys/internal/ui/mounts/';
    if (path.startsWith(mountsPrefix) && method === 'GET') {
      const name = path.slice(mountsPrefix.length).split('/')[0] ?? '';
      const mount = this.mountOf(namespace, name);
      if (!mount) return errors(403, `preflight capability check returned 403, please ensure client's policies grant access to path "${name}/"`);
      return reply(200, { data: { path: `${name}/`, type: 'kv', options: { version: mount.version } } });
    }

    const [, , mountName = '', ...rest] = path.split('/');
    const mount = this.mountOf(namespace, mountName);
    if (!mount) return errors(404, `no handler for route "${path.slice(4)}"`);
    if (mount.version === '1') return errors(404, 'KV v1 has no data/ paths');
    if (rest[0] !== 'data') return errors(405, 'unsupported path');
    const secretPath = rest.slice(1).join('/');
    const versions = mount.secrets.get(secretPath) ?? [];

    if (method === 'GET') {
      const last = versions[versions.length - 1];
      if (!last) return errors(404);
      const metadata = { version: versions.length, created_time: new Date().toISOString(), deletion_time: last.deleted ? new Date().toISOString() : '', destroyed: false, custom_metadata: null };
      if (last.deleted) return reply(404, { data: { data: null, metadata } });
      return reply(200, { request_id: 'r', data: { data: last.data, metadata } });
    }
    if (method === 'POST' || method === 'PUT') {
      const { options, data } = JSON.parse(body || '{}') as { options?: { cas?: number }; data?: Record<string, unknown> };
      if (!data) return errors(400, 'no data provided');
      if (fault?.kind === 'concurrent-write') {
        this.faults.shift();
        versions.push({ data: fault.data, deleted: false });
        mount.secrets.set(secretPath, versions);
      }
      const cas = options?.cas;
      if (cas === undefined && mount.casRequired) return errors(400, 'check-and-set parameter required for this call');
      if (cas !== undefined && cas !== versions.length) return errors(400, 'check-and-set parameter did not match the current version');
      const acknowledged = this.faults[0];
      if (acknowledged?.kind === 'lost-write' || acknowledged?.kind === 'other-write') {
        this.faults.shift();
        if (acknowledged.kind === 'other-write') versions.push({ data: acknowledged.data, deleted: false });
        mount.secrets.set(secretPath, versions);
        return reply(200, { data: { version: versions.length + 1, created_time: new Date().toISOString(), deletion_time: '', destroyed: false } });
      }
      versions.push({ data, deleted: false });
      mount.secrets.set(secretPath, versions);
      if (this.faults[0]?.kind === 'reset-after-write') {
        this.faults.shift();
        request.socket.destroy();
        return;
      }
      return reply(200, { data: { version: versions.length, created_time: new Date().toISOString(), deletion_time: '', destroyed: false } });
    }
    return errors(405, 'unsupported method');
  }
}

/**
 * `prometheus`: an instant query over the HTTP API must return exactly 0. No data is `unknown` —
 * unless a liveness query proves the pipeline is alive (S6). Bearer or basic auth from environment
 * variables; a timeout on every request.
 */
import { verdictOf, type Gate, type GateContext, type GateResult } from './types.js';

export const GATE_TYPE = 'prometheus';

export interface PrometheusOptions {
  readonly name: string;
  readonly url: string;
  readonly query: string;
  readonly liveness?: string;
  readonly timeoutMs: number;
  readonly bearerTokenEnv?: string;
  readonly username?: string;
  readonly passwordEnv?: string;
}

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

function authorization(options: PrometheusOptions): string | undefined {
  if (options.bearerTokenEnv) {
    const token = process.env[options.bearerTokenEnv];
    if (!token) throw new Error(`$${options.bearerTokenEnv} is not set`);
    return `Bearer ${token}`;
  }
  if (options.username) {
    const password = options.passwordEnv ? process.env[options.passwordEnv] : '';
    if (password === undefined) throw new Error(`$${options.passwordEnv} is not set`);
    return `Basic ${Buffer.from(`${options.username}:${password}`).toString('base64')}`;
  }
  return undefined;
}

export async function instantQuery(options: PrometheusOptions, query: string, at: Date): Promise<Sample[]> {
  const url = new URL('api/v1/query', options.url.endsWith('/') ? options.url : `${options.url}/`);
  url.searchParams.set('query', query);
  url.searchParams.set('time', (at.getTime() / 1000).toFixed(3));
  const auth = authorization(options);
  const response = await fetch(url, { headers: auth ? { authorization: auth } : {}, signal: AbortSignal.timeout(options.timeoutMs) });
  const body = (await response.json().catch(() => null)) as { status?: string; error?: string; data?: { resultType?: string; result?: unknown } } | null;
  if (!response.ok || body?.status !== 'success') throw new Error(`Prometheus answered ${response.status}${body?.error ? `: ${body.error}` : ''}`);
  const { resultType, result } = body.data ?? {};
  if (resultType === 'scalar') return [{ metric: {}, value: Number((result as [number, string])[1]) }];
  if (resultType !== 'vector' || !Array.isArray(result)) throw new Error(`expected an instant vector, got ${resultType}`);
  return (result as { metric: Record<string, string>; value: [number, string] }[]).map((sample) => ({ metric: sample.metric, value: Number(sample.value[1]) }));
}

export function createPrometheusGate(options: PrometheusOptions): Gate {
  return {
    name: options.name,
    async evaluate(context: GateContext): Promise<GateResult> {
      const result = verdictOf(options.name);
      const samples = await instantQuery(options, options.query, context.now);
      const evidence = { query: options.query, samples: samples.slice(0, 20) };
      if (samples.length === 0) {
        if (!options.liveness) return result('unknown', `no data for ${options.query} (configure a liveness query to accept "no series" as zero)`, evidence);
        const alive = await instantQuery(options, options.liveness, context.now);
        if (alive.length === 0) return result('unknown', `no data for ${options.query}, and the liveness query ${options.liveness} returned none either`, { ...evidence, liveness: options.liveness });
        return result('pass', `no series for ${options.query}; liveness query returned ${alive.length} series`, { ...evidence, liveness: options.liveness });
      }
      const bad = samples.filter((sample) => sample.value !== 0);
      if (bad.length > 0) {
        const shown = bad.slice(0, 3).map((sample) => `${JSON.stringify(sample.metric)}=${sample.value}`);
        return result('wait', `${options.query} is not 0: ${shown.join(', ')}`, evidence);
      }
      return result('pass', `${options.query} = 0 (${samples.length} series)`, evidence);
    },
  };
}

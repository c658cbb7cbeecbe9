/** `check`: reach every target and signal source, parse and lint every target, prove the targets agree. */
import type { RingConfig } from '../config/schema.js';
import { observeTarget } from '../core/keyset.js';
import { checkTargets } from '../core/guards.js';
import { isRotorError } from '../errors.js';
import { gateName, prometheusOptions } from '../gates/index.js';
import { instantQuery } from '../gates/prometheus.js';
import { lintSigningEnv, type LintFinding } from '../stem/lint.js';
import { scanStemDeadLetters } from '../stem/dead-letters.js';
import { stemKeys } from '../stem/redis-keys.js';
import { StemSources, describeEndpoint } from '../stem/sources.js';
import { sqlHeartbeatRows, sqlJobRows } from '../stem/sql-evidence.js';
import type { RingEngine } from './engine.js';
import { readSigningEnv, type TargetHandle } from './targets.js';

export interface SignalCheck {
  readonly signal: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Reaches every evidence source the ring's gates read: Stem's broker and backend, each Prometheus. */
async function checkSignals(ring: RingConfig): Promise<SignalCheck[]> {
  const checks: Promise<SignalCheck>[] = [];
  const attempt = (signal: string, probe: () => Promise<string>) =>
    checks.push(probe().then((detail) => ({ signal, ok: true, detail }), (error: Error) => ({ signal, ok: false, detail: error.message })));
  const stem = ring.stem ? new StemSources(ring.stem) : null;
  if (ring.stem && stem) {
    const signals = ring.stem;
    const namespace = signals.backendNamespace ?? signals.namespace;
    const timezone = signals.timezone ?? null;
    attempt(`broker ${describeEndpoint(stem.endpoint('broker'))}`, async () => {
      const broker = await stem.broker();
      const reached = broker.kind === 'redis' ? `PING ${await broker.redis.ping()}` : `${await sqlJobRows(broker.sql, signals.namespace)} rows in stem_queue_jobs (namespace "${signals.namespace}")`;
      // Stem before 0.2 wrote times without a zone; say so, and how they are read.
      const sample = await scanStemDeadLetters(broker, signals.namespace, { since: null, maxEntries: 200, timezone });
      const zoneLess = sample.zoneLess === 0 ? '' : `; ${sample.zoneLess} of the newest dead letters have zone-less deadAt (Stem < 0.2): ${timezone ? `read in ${timezone}` : 'set stem.timezone to the workers\' IANA zone'}`;
      return `${reached}${zoneLess}`;
    });
    attempt(`backend ${describeEndpoint(stem.endpoint('backend'))}`, async () => {
      const backend = await stem.backend();
      if (backend.kind === 'sql') return `${await sqlHeartbeatRows(backend.sql, namespace)} workers in stem_worker_heartbeats (namespace "${namespace}")`;
      return `${await backend.redis.scard(stemKeys(namespace).heartbeatSet)} workers in ${namespace}:worker:heartbeats`;
    });
  }
  for (const gate of [...ring.gates.beforeActivate, ...ring.gates.beforeDrop]) {
    if (gate.type !== 'prometheus') continue;
    const options = prometheusOptions(gate);
    attempt(`prometheus ${gate.url} (${gateName(gate)})`, async () => `${(await instantQuery(options, gate.query, new Date())).length} series for ${gate.query}`);
  }
  try {
    return await Promise.all(checks);
  } finally {
    await stem?.close();
  }
}

export interface CheckReport {
  readonly ring: string;
  readonly ok: boolean;
  readonly signals: readonly SignalCheck[];
  readonly targets: readonly { name: string; location: string; reachable: boolean; findings: readonly LintFinding[]; error?: string; residue: readonly string[] }[];
  /** Temp files crashed writers left (targets' and the state store's); the next command holding the lease removes them. */
  readonly residue: readonly string[];
  readonly agreement: string;
  readonly exitCode: number;
}

/** `check`: reach every target, parse and lint its Stem config, and prove the targets agree (S10). */
export async function checkRing(engine: RingEngine, handles: readonly TargetHandle[]): Promise<CheckReport> {
  const targets = await Promise.all(
    handles.map(async (handle) => {
      const base = { name: handle.config.name, location: handle.provider.location, residue: (await handle.provider.residue?.().catch(() => [])) ?? [] };
      let env;
      try {
        env = (await readSigningEnv(handle)).env;
      } catch (error) {
        return { ...base, reachable: false, findings: [], error: (error as Error).message, exitCode: isRotorError(error) ? error.exitCode : 1 };
      }
      const findings = lintSigningEnv(env);
      try {
        observeTarget(handle.config.name, handle.config.audience, engine.ring.algorithm, env);
        return { ...base, reachable: true, findings, exitCode: 0 };
      } catch (error) {
        return { ...base, reachable: true, findings, error: (error as Error).message, exitCode: isRotorError(error) ? error.exitCode : 1 };
      }
    }),
  );
  let agreement = 'not checked: some targets have problems';
  let agreementExit = 0;
  if (targets.every((target) => target.exitCode === 0)) {
    try {
      const reads = await engine.readAll();
      const { state } = await engine.currentState(reads);
      checkTargets(state, reads.map((read) => read.observed));
      agreement = state.transition ? `targets are within the interrupted ${state.transition.kind}; resume it with rotate advance` : 'every target agrees with the ring';
    } catch (error) {
      agreement = (error as Error).message;
      agreementExit = isRotorError(error) ? error.exitCode : 1;
    }
  }
  const signals = await checkSignals(engine.ring);
  const residue = [...targets.flatMap((target) => target.residue), ...(await engine.storeResidue())];
  const exitCode = Math.max(agreementExit, signals.every((signal) => signal.ok) ? 0 : 1, ...targets.map((target) => target.exitCode));
  return { ring: engine.ring.name, ok: exitCode === 0, signals, targets: targets.map(({ exitCode: _unused, ...rest }) => rest), residue, agreement, exitCode };
}

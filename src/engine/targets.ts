/**
 * Reading targets: provider snapshot → Stem variables (through the target's field mapping) →
 * the core's observation. Every read goes through here, so field mapping lives in one place.
 */
import type { Provider, TargetSnapshot } from '../../providers/types.js';
import type { RingConfig, TargetConfig } from '../config/schema.js';
import { observeTarget, observedFields, type Observation } from '../core/keyset.js';
import type { SigningEnv, StemEnvName } from '../stem/signing-env.js';

export interface TargetHandle {
  readonly config: TargetConfig;
  readonly provider: Provider;
}

export interface TargetRead extends Observation {
  readonly handle: TargetHandle;
  readonly snapshot: TargetSnapshot;
}

/** A target's Stem variables, through its field mapping. */
export async function readSigningEnv(handle: TargetHandle): Promise<{ env: SigningEnv; snapshot: TargetSnapshot }> {
  const variables = observedFields();
  const snapshot = await handle.provider.read(variables.map((variable) => fieldName(handle.config, variable)));
  const env: SigningEnv = {};
  for (const variable of variables) {
    const value = snapshot.fields[fieldName(handle.config, variable)];
    if (value !== undefined) env[variable] = value;
  }
  return { env, snapshot };
}

export function fieldName(target: TargetConfig, variable: StemEnvName): string {
  return target.fields[variable] ?? variable;
}

export async function readTarget(ring: RingConfig, handle: TargetHandle): Promise<TargetRead> {
  const { env, snapshot } = await readSigningEnv(handle);
  return { ...observeTarget(handle.config.name, handle.config.audience, ring.algorithm, env), handle, snapshot };
}

/** Verifiers first, then signers (SPEC §3), config order otherwise. */
export function writeOrder(handles: readonly TargetHandle[]): TargetHandle[] {
  return [...handles.filter((h) => h.config.audience === 'verifiers'), ...handles.filter((h) => h.config.audience === 'all')];
}

export function toFields(target: TargetConfig, values: Partial<Record<StemEnvName, string>>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [variable, value] of Object.entries(values) as [StemEnvName, string][]) fields[fieldName(target, variable)] = value;
  return fields;
}

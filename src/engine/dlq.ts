/**
 * `dlq inspect` and `dlq replay --resign`: signature-invalid dead letters of a ring's Stem, classified
 * by key id, error class and queue, and re-verified byte-for-byte against every key the ring's
 * targets hold. Replay re-signs with the active key only envelopes whose original signature verifies
 * under a key that is still trusted — never one signed by a revoked key.
 */
import { ConfigError } from '../errors.js';
import { SIGNATURE_HEADER, SIGNATURE_KEY_HEADER } from '../stem/canonical.js';
import { groupDeadLetters, scanStemDeadLetters, type DeadLetter, type DlqClass } from '../stem/dead-letters.js';
import type { KeyMaterial } from '../stem/keys.js';
import { stemKeys } from '../stem/redis-keys.js';
import { StemSources } from '../stem/sources.js';
import { keysThatVerify, signEnvelope } from '../stem/signer.js';
import type { Algorithm, StemSigningConfig } from '../stem/signing-env.js';
import { streamFields } from '../stem/stream-format.js';
import { mergeMaterial } from './apply.js';
import type { RingEngine } from './engine.js';

export interface InspectedLetter {
  readonly queue: string;
  readonly id: string;
  readonly task: string;
  readonly deadAt: string | null;
  readonly keyId: string;
  readonly errorClass: DlqClass;
  readonly error: string;
  readonly attempt: number;
  /** Ring keys (from the targets) under which the original signature verifies. */
  readonly verifiesWith: readonly string[];
}

export interface DlqReport {
  readonly ring: string;
  readonly scanned: number;
  readonly malformed: number;
  readonly truncated: boolean;
  readonly groups: readonly (ReturnType<typeof groupDeadLetters>[number] & { verifiesWith: string })[];
  readonly letters: readonly InspectedLetter[];
}

export interface DlqOptions {
  readonly since?: Date;
  readonly limit: number;
}

export async function ringContext(engine: RingEngine) {
  const signals = engine.ring.stem;
  if (!signals) throw new ConfigError(`ring "${engine.ring.name}" has no \`stem\` section: stem-rotor does not know where its dead letters are`);
  const reads = await engine.readAll();
  const { state } = await engine.currentState(reads);
  return { signals, state, material: mergeMaterial(reads) };
}

async function collect(engine: RingEngine, options: DlqOptions) {
  const { signals, state, material } = await ringContext(engine);
  const stem = new StemSources(signals);
  try {
    const scan = await scanStemDeadLetters(await stem.broker(), signals.namespace, { since: options.since ?? null, maxEntries: options.limit, timezone: signals.timezone ?? null });
    const inspected = scan.signatureInvalid.map((letter) => ({ letter, verifiesWith: keysThatVerify(engine.ring.algorithm, letter.envelope, material, signals.timezone) }));
    return { signals, state, material, scan, inspected, stem };
  } catch (error) {
    await stem.close();
    throw error;
  }
}

function describeLetter(letter: DeadLetter, verifiesWith: string[]): InspectedLetter {
  return {
    queue: letter.queue,
    id: letter.envelope.id,
    task: letter.envelope.name,
    deadAt: letter.deadAt?.toISOString() ?? null,
    keyId: letter.keyId,
    errorClass: letter.errorClass,
    error: letter.error,
    attempt: letter.envelope.attempt,
    verifiesWith,
  };
}

export async function inspectDeadLetters(engine: RingEngine, options: DlqOptions): Promise<DlqReport> {
  const { scan, inspected, stem } = await collect(engine, options);
  await stem.close();
  const groups = new Map<string, DlqReport['groups'][number]>();
  for (const { letter, verifiesWith } of inspected) {
    const verified = verifiesWith.join(',') || 'none';
    const [group] = groupDeadLetters([letter]);
    const id = `${group!.keyId}\u0000${group!.errorClass}\u0000${group!.queue}\u0000${verified}`;
    const existing = groups.get(id);
    if (existing) {
      existing.count += 1;
      if (group!.newest && (!existing.newest || group!.newest > existing.newest)) existing.newest = group!.newest;
    } else groups.set(id, { ...group!, verifiesWith: verified });
  }
  return {
    ring: engine.ring.name,
    scanned: scan.scanned,
    malformed: scan.malformed,
    truncated: scan.truncated,
    groups: [...groups.values()].sort((a, b) => b.count - a.count),
    letters: inspected.map(({ letter, verifiesWith }) => describeLetter(letter, verifiesWith)),
  };
}

export interface ReplayResult {
  readonly ring: string;
  readonly dryRun: boolean;
  readonly activeKeyId: string;
  readonly replayed: readonly (InspectedLetter & { readonly stream: string })[];
  readonly skipped: readonly (InspectedLetter & { readonly why: string })[];
}

export function signingConfig(algorithm: Algorithm, activeKeyId: string, material: ReadonlyMap<string, KeyMaterial>): StemSigningConfig {
  const key = material.get(activeKeyId);
  if (!key?.secret) throw new ConfigError(`no target holds the secret of the active key "${activeKeyId}"`);
  const verification = algorithm === 'ed25519' ? key.publicKey : key.secret;
  return {
    algorithm,
    activeKeyId,
    enabled: true,
    canSign: true,
    verificationKeys: new Map([[activeKeyId, verification as Buffer]]),
    signingKeys: new Map([[activeKeyId, key.secret]]),
  };
}

/** Re-signs and re-enqueues (XADD in Stem's format, then LREM the dead letter) what is safe to replay. */
export async function replayDeadLetters(engine: RingEngine, options: DlqOptions & { readonly dryRun: boolean }): Promise<ReplayResult> {
  const { signals, state, material, inspected, stem } = await collect(engine, options);
  try {
    const revoked = new Set(state.revokedKeyIds);
    const keys = stemKeys(signals.namespace);
    const signer = signingConfig(engine.ring.algorithm, state.activeKeyId, material);
    const replayed: (InspectedLetter & { stream: string })[] = [];
    const skipped: (InspectedLetter & { why: string })[] = [];
    const broker = await stem.brokerRedis('dlq replay', `see what would verify with: stem-rotor dlq inspect ${engine.ring.name}`);
    for (const { letter, verifiesWith } of inspected) {
      const described = describeLetter(letter, verifiesWith);
      const trusted = verifiesWith.filter((id) => !revoked.has(id));
      if (revoked.has(letter.keyId) || verifiesWith.some((id) => revoked.has(id))) {
        skipped.push({ ...described, why: `signed with revoked key "${revoked.has(letter.keyId) ? letter.keyId : verifiesWith.find((id) => revoked.has(id))}"` });
        continue;
      }
      if (trusted.length === 0) {
        skipped.push({ ...described, why: 'its signature verifies under no key the ring still trusts' });
        continue;
      }
      const { [SIGNATURE_HEADER]: _signature, [SIGNATURE_KEY_HEADER]: _key, ...headers } = letter.envelope.headers;
      const resigned = signEnvelope({ ...letter.envelope, headers, attempt: letter.envelope.attempt + 1, notBefore: null }, signer);
      const stream = keys.stream(resigned.queue, resigned.priority);
      replayed.push({ ...described, stream });
      if (options.dryRun) continue;
      // Enqueue before removing: a crash in between duplicates a task rather than losing it.
      await broker.xadd(stream, '*', ...streamFields(resigned));
      await broker.lrem(keys.dead(letter.queue), 1, letter.raw);
    }
    const result = { ring: engine.ring.name, dryRun: options.dryRun, activeKeyId: state.activeKeyId, replayed, skipped };
    if (options.dryRun) return result;
    await engine.audit('dlq-replay', 'ok', {
      resignedWith: state.activeKeyId,
      replayed: replayed.map((letter) => ({ id: letter.id, queue: letter.queue, verifiedWith: letter.verifiesWith })),
      skipped: skipped.length,
    });
    return result;
  } finally {
    await stem.close();
  }
}

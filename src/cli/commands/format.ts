/** Human renderings of command results. JSON output uses the result objects directly. */
import { formatDuration } from '../../duration.js';
import type { PlannedWrite, StepResult } from '../../engine/engine.js';
import type { StatusReport } from '../../engine/status.js';
import type { WriteRecord } from '../../core/types.js';
import type { GateResult } from '../../gates/index.js';

function compact(evidence: Readonly<Record<string, unknown>>): string {
  const text = JSON.stringify(evidence);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

export function formatGates(gates: readonly GateResult[]): string[] {
  return gates.flatMap((gate) => {
    const verdict = gate.overridden ? `${gate.verdict} → overridden (${gate.overridden.reason})` : gate.verdict;
    const line = `  ${gate.name.padEnd(12)} ${verdict.padEnd(8)} ${gate.reason}`;
    return gate.evidence ? [line, `  ${''.padEnd(12)} evidence ${compact(gate.evidence)}`] : [line];
  });
}

export function formatStatus(report: StatusReport): string {
  const lines = [`ring ${report.ring} (${report.algorithm}) — phase: ${report.phase}`];
  const rotation = report.rotation;
  if (rotation) {
    lines.push(`  rotation ${rotation.id}: ${rotation.oldKeyId} → ${rotation.newKeyId}${rotation.phase === 'rolling-back' ? ' (aborting)' : ''}, started ${rotation.startedAt}, phase verified ${rotation.phaseVerifiedAt}`);
  }
  if (report.transition) {
    lines.push(`  interrupted ${report.transition.kind}: ${report.transition.writes.map((w) => `${w.target}=${w.status}`).join(', ') || 'no writes yet'}`);
  }
  lines.push('keys:');
  for (const key of report.keys) {
    lines.push(`  ${key.active ? '*' : ' '} ${key.id.padEnd(28)} fp ${key.fingerprint}  age ${formatDuration(key.ageMs).padEnd(5)} in ${key.presentIn.join(', ') || '(no target)'}`);
  }
  if (report.revokedKeyIds.length > 0) lines.push(`  revoked: ${report.revokedKeyIds.join(', ')}`);
  lines.push('targets:');
  for (const target of report.targets) {
    const where = `${target.name} (${target.provider}, ${target.audience}) ${target.location}`;
    lines.push(target.error ? `  ${where}  UNREADABLE: ${target.error}` : `  ${where}  ${target.version}  ${target.inSync ? 'in sync' : `DIFFERS: keys ${target.keyIds.join(',')}, active ${target.activeKeyId ?? '-'}`}`);
  }
  if (report.gates.length > 0) {
    lines.push('gates:');
    lines.push(...formatGates(report.gates));
  }
  if (report.stuckForMs !== null) lines.push(`STUCK: gates have blocked for ${formatDuration(report.stuckForMs)} (policy.stuckAfter)`);
  lines.push(`next: ${report.next}`);
  return lines.join('\n');
}

function isPlanned(write: WriteRecord | PlannedWrite): write is PlannedWrite {
  return 'change' in write;
}

export function formatStep(result: StepResult): string {
  const lines = [`${result.ring}: ${result.message}`];
  if (result.transition) {
    const { from, desired } = result.transition;
    lines.push(`  ${result.transition.kind}: keys ${from.keyIds.join(',')} (active ${from.activeKeyId}) → ${desired.keyIds.join(',')} (active ${desired.activeKeyId})`);
  }
  if (result.newKey) lines.push(`  new key ${result.newKey.id} fp ${result.newKey.fingerprint ?? "(unknown)"}`);
  if (result.gates.length > 0) lines.push('  gates:', ...formatGates(result.gates).map((line) => `  ${line}`));
  for (const write of result.writes) {
    if (isPlanned(write)) {
      lines.push(`  ${write.change ? 'write' : 'keep '} ${write.target} (${write.audience}) ${write.location}: ${write.fields.join(', ')}; ${write.before.keyIds.join(',')} → ${write.after.keyIds.join(',')}${write.after.activeKeyId ? `, active ${write.after.activeKeyId}` : ''}`);
    } else {
      lines.push(`  ${write.target}: ${write.status}${write.version ? ` ${write.version}` : ''}${write.error ? ` (${write.error})` : ''}`);
    }
  }
  lines.push(`  phase: ${result.phase}`);
  return lines.join('\n');
}

/**
 * The error family. Every error a command can end with carries its exit code (SPEC §6):
 * 0 done, 1 failure, 2 usage/config error, 3 blocked by a gate, 4 lease held, 5 partial.
 * Messages never contain key material: callers pass key ids and fingerprints only.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  blocked: 3,
  leaseHeld: 4,
  partial: 5,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class RotorError extends Error {
  override name: string = 'RotorError';
  readonly code: string = 'ROTOR_ERROR';
  readonly exitCode: ExitCodeValue = ExitCode.failure;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bad config file, bad flag or argument: nothing was written. */
export class ConfigError extends RotorError {
  override name = 'ConfigError' as const;
  override readonly code = 'CONFIG_INVALID';
  override readonly exitCode = ExitCode.usage;
}

/** A config file that fails validation: every finding, each from a named rule (`check --json` lists them). */
export class InvalidConfigError extends ConfigError {
  readonly findings: readonly { readonly rule: string; readonly path: string; readonly message: string }[];
  constructor(file: string, findings: InvalidConfigError['findings']) {
    super(`invalid config ${file}:\n  ${findings.map((finding) => `${finding.path}: ${finding.message}`).join('\n  ')}`);
    this.findings = findings;
  }
}

/** A target's Stem signing config cannot be parsed, or disagrees with the ring: nothing was written. */
export class TargetContentError extends RotorError {
  override name = 'TargetContentError' as const;
  override readonly code = 'TARGET_CONTENT_INVALID';
  override readonly exitCode = ExitCode.usage;
  readonly target: string;
  constructor(target: string, message: string) {
    super(`target "${target}": ${message}`);
    this.target = target;
  }
}

/** One or more gates did not pass. */
export class GateBlockedError extends RotorError {
  override name = 'GateBlockedError' as const;
  override readonly code = 'GATE_BLOCKED';
  override readonly exitCode = ExitCode.blocked;
  readonly reasons: readonly string[];
  constructor(message: string, reasons: readonly string[]) {
    super(message);
    this.reasons = reasons;
  }
}

/** Another orchestrator holds the ring's lease (or fenced us out). */
export class LeaseHeldError extends RotorError {
  override name = 'LeaseHeldError' as const;
  override readonly code = 'LEASE_HELD';
  override readonly exitCode = ExitCode.leaseHeld;
}

/** Some targets were written, some failed; re-running converges. */
export class PartialFailureError extends RotorError {
  override name = 'PartialFailureError' as const;
  override readonly code = 'PARTIAL';
  override readonly exitCode = ExitCode.partial;
  readonly failures: readonly { target: string; error: string }[];
  constructor(message: string, failures: readonly { target: string; error: string }[]) {
    super(message);
    this.failures = failures;
  }
}

/** A compare-and-set write lost against a concurrent writer. */
export class ConflictError extends RotorError {
  override name = 'ConflictError' as const;
  override readonly code = 'CAS_CONFLICT';
}

/** A command asked for something the ring's current phase does not allow. */
export class InvalidTransitionError extends RotorError {
  override name = 'InvalidTransitionError' as const;
  override readonly code = 'INVALID_TRANSITION';
  override readonly exitCode = ExitCode.usage;
}

/** A saved plan no longer matches the ring, its targets or its gates: nothing was written. */
export class PlanChangedError extends RotorError {
  override name = 'PlanChangedError' as const;
  override readonly code = 'PLAN_CHANGED';
  override readonly exitCode = ExitCode.usage;
}

/** "Can't happen": the CLI prints a bug-report hint. */
export class InternalError extends RotorError {
  override name = 'InternalError' as const;
  override readonly code = 'INTERNAL';
}

export function isRotorError(value: unknown): value is RotorError {
  return value instanceof Error && typeof (value as RotorError).exitCode === 'number' && 'code' in value;
}

const IO_EXPLANATIONS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EISDIR: 'is a directory',
  ENOTDIR: 'a path component is not a directory',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  EBUSY: 'resource busy',
  EXDEV: 'crosses file systems',
};

/** A failed system call with a path (Node's fs errors), one of the expected kinds. */
export function isExpectedIoError(error: unknown): error is NodeJS.ErrnoException & { code: string } {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && (error as NodeJS.ErrnoException).code! in IO_EXPLANATIONS;
}

/** An expected I/O failure: one line naming the operation and the path, never a stack trace. */
export class IoError extends RotorError {
  override name = 'IoError' as const;
  override readonly code: string;
  override readonly exitCode: ExitCodeValue;
  constructor(operation: string, path: string, errno: string, options: { exitCode?: ExitCodeValue; hint?: string; cause?: unknown } = {}) {
    super(`cannot ${operation} ${path}: ${IO_EXPLANATIONS[errno] ?? errno} (${errno})${options.hint ? `; ${options.hint}` : ''}`, { cause: options.cause });
    this.code = `IO_${errno}`;
    this.exitCode = options.exitCode ?? ExitCode.failure;
  }
}

/** Wraps an expected I/O error as an IoError naming `operation` and `path`; anything else is rethrown as is. */
export function asIoError(error: unknown, operation: string, path: string, options: { exitCode?: ExitCodeValue; hint?: string } = {}): unknown {
  if (isRotorError(error) || !isExpectedIoError(error)) return error;
  return new IoError(operation, path, error.code, { ...options, cause: error });
}

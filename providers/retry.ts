/**
 * Bounded retries with exponential backoff and full jitter, for throttling and transient faults
 * only. Every provider decides what is transient; conflicts, permission and not-found errors are
 * final on the first try.
 */
export interface RetryPolicy {
  /** @default 4 */
  readonly attempts?: number;
  /** @default 100 */
  readonly baseDelayMs?: number;
  /** @default 2000 */
  readonly maxDelayMs?: number;
  /** Injected for tests. @default setTimeout */
  readonly sleep?: (milliseconds: number) => Promise<void>;
  readonly random?: () => number;
}

export async function withRetries<T>(work: () => Promise<T>, isTransient: (error: unknown) => boolean, policy: RetryPolicy = {}): Promise<T> {
  const attempts = policy.attempts ?? 4;
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = policy.random ?? Math.random;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      const ceiling = Math.min(policy.maxDelayMs ?? 2000, (policy.baseDelayMs ?? 100) * 2 ** (attempt - 1));
      await sleep(Math.floor(random() * ceiling));
    }
  }
}

/** Socket-level failures worth retrying. */
export function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'ERR_SOCKET_CONNECTION_TIMEOUT'].includes(code);
}

/** HTTP statuses worth retrying: throttling and the server-side 5xx that a later try may not meet. */
export function isTransientStatus(status: number | undefined): boolean {
  return status === 429 || (status !== undefined && status >= 500 && status <= 504);
}

/** The shared rule: a transient HTTP status (however the client reports it) or a socket-level failure. */
export function isTransientHttpError(error: unknown, status: number | undefined): boolean {
  return isTransientStatus(status) || isNetworkError(error);
}

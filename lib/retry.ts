// One retry policy for the whole program: bounded attempts, exponential backoff with jitter.
// The HTTP transport uses it for connection errors and retryable statuses; readers of small
// registry documents and the graph copy use retryTransient for content damaged on the way.
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from './errors.js';

export interface BackoffOptions {
  /** Attempts in all, including the first (default 5). */
  attempts?: number;
  /** First backoff delay (default 250 ms); doubles with each attempt. */
  baseDelayMs?: number;
  /** Longest backoff delay (default 10 s). */
  maxDelayMs?: number;
}

export const DEFAULT_ATTEMPTS = 5;

/** The wait before attempt `attempt + 1`: between half and all of base * 2^(attempt-1), capped. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const ceiling = Math.min(opts.maxDelayMs ?? 10_000, (opts.baseDelayMs ?? 250) * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Runs `work` until it succeeds, fails with an error that is not transient (isTransient), or
 * has used up its attempts; the last error is thrown. `work` gets the attempt number (1-based).
 */
export async function retryTransient<T>(work: (attempt: number) => Promise<T>, opts: BackoffOptions & { signal?: AbortSignal } = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? DEFAULT_ATTEMPTS);
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (attempt >= attempts || !isTransient(err, attempt)) throw err;
      await sleep(backoffDelay(attempt, opts), undefined, { signal: opts.signal });
    }
  }
}

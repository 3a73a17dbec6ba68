/**
 * Retry policy: full-jitter exponential backoff (CloudFiles' defaults: 7 attempts, the sleep window
 * starting at 0.5 s and doubling up to 60 s). Only failures marked `retryable` are retried: 5xx,
 * 429/SlowDown, connection resets, timeouts, short bodies and integrity mismatches; never other 4xx.
 */
import pRetry from "p-retry";
import { StoreError } from "../errors.js";
import { allowManyListeners, onAbort } from "../util/abort.js";

export interface RetryPolicy {
  /** Total attempts including the first. Default 7. */
  attempts: number;
  /** Initial backoff window in ms. Default 500. */
  baseDelayMs: number;
  /** Largest backoff window in ms. Default 60 000. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 7, baseDelayMs: 500, maxDelayMs: 60_000 };

/** Counters a caller (test, benchmark, CLI) can read: how often the policy had to step in. */
export interface RetryStats {
  retries: number;
}

export function isRetryable(error: unknown): boolean {
  return error instanceof StoreError && error.retryable;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      stop();
      resolve();
    }, ms);
    const stop = onAbort(signal, () => {
      clearTimeout(timer);
      reject(signal!.reason);
    });
  });
}

/**
 * Runs `attempt` under the policy. The attempt count is written onto the final StoreError so the
 * message a user sees says how hard we tried.
 */
export async function withRetry<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
  stats?: RetryStats,
): Promise<T> {
  let attempts = 0;
  allowManyListeners(signal); // p-retry listens to it too, once per operation in flight
  try {
    return await pRetry(
      async () => {
        attempts++;
        return attempt();
      },
      {
        retries: Math.max(0, policy.attempts - 1),
        // p-retry's own delay is switched off: its randomisation is not full jitter.
        minTimeout: 0,
        maxTimeout: 0,
        signal,
        shouldRetry: ({ error }) => isRetryable(error) && !signal?.aborted,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft <= 0 || !isRetryable(error) || signal?.aborted) return;
          if (stats) stats.retries++;
          const window = Math.min(policy.baseDelayMs * 2 ** (attemptNumber - 1), policy.maxDelayMs);
          await sleep(Math.random() * window, signal);
        },
      },
    );
  } catch (error) {
    if (error instanceof StoreError) {
      error.attempts = attempts;
      if (attempts > 1) error.message += ` after ${attempts} attempts`;
    }
    throw error;
  }
}

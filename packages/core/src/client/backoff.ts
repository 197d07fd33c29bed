/** How read-only calls are retried. */
export interface RetryOptions {
  /** Total tries, the first one included. */
  attempts: number;
  /** The backoff ceiling of the first retry; it doubles for each later one. */
  baseDelayMs: number;
  /** No wait is longer than this; a Retry-After beyond it stops the retries. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({
  attempts: 3,
  baseDelayMs: 100,
  maxDelayMs: 2000,
});

/**
 * How long to wait before retry number `retryIndex` (0 for the first retry): full-jitter
 * exponential backoff, a uniform draw in [0, min(maxDelayMs, baseDelayMs * 2^retryIndex)].
 * When the server said Retry-After, wait exactly that instead; if that is longer than
 * `maxDelayMs`, return `undefined`: retrying sooner would only be refused again, so the caller
 * should give up and pass the wait on to the user.
 */
export function backoffDelayMs(
  retryIndex: number,
  retry: RetryOptions,
  random: () => number = Math.random,
  retryAfterSeconds?: number,
): number | undefined {
  if (retryAfterSeconds !== undefined) {
    const waitMs = Math.max(0, retryAfterSeconds * 1000);
    return waitMs > retry.maxDelayMs ? undefined : waitMs;
  }
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** retryIndex);
  return Math.floor(random() * ceiling);
}

/**
 * Parses an HTTP Retry-After header (delta-seconds or an HTTP date) into whole seconds,
 * or `undefined` when it is absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const atMs = Date.parse(trimmed);
  if (!Number.isFinite(atMs)) return undefined;
  return Math.max(0, Math.ceil((atMs - nowMs) / 1000));
}

/** A wait that an AbortSignal can cut short (it then rejects with the signal's reason). */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** The real {@link Sleep}, on timers. */
export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

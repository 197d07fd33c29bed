import { type Clock, RekeyError } from "@rekey/core";

/** A token bucket: `capacity` requests at once, refilled at `capacity` per `windowMs`. */
export interface RateLimitOptions {
  capacity: number;
  windowMs: number;
  /** What is limited, for the error message; default "rotation". */
  what?: string;
}

/** Per-name limiter: `take(name)` spends one request or throws RATE_LIMITED. */
export interface RateLimiter {
  /** @throws RekeyError RATE_LIMITED with details.retryAfterSeconds when the bucket is empty. */
  take(name: string): void;
}

/**
 * An in-memory token bucket per name (one per bearer token). It is per process on purpose:
 * it protects this endpoint from a runaway client, while core's cooldown guard is what protects
 * the faucet account across replicas.
 */
export function createRateLimiter(options: RateLimitOptions, clock: Clock): RateLimiter {
  const refillPerMs = options.capacity / options.windowMs;
  const buckets = new Map<string, { tokens: number; updatedAt: number }>();
  return {
    take(name) {
      const now = clock.now();
      const bucket = buckets.get(name) ?? { tokens: options.capacity, updatedAt: now };
      bucket.tokens = Math.min(
        options.capacity,
        bucket.tokens + Math.max(0, now - bucket.updatedAt) * refillPerMs,
      );
      bucket.updatedAt = now;
      buckets.set(name, bucket);
      if (bucket.tokens < 1) {
        const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000));
        throw new RekeyError(
          "RATE_LIMITED",
          `Too many ${options.what ?? "rotation"} requests for token ${name}`,
          {
            hint: `Wait ${retryAfterSeconds} s before trying again.`,
            details: { retryAfterSeconds },
          },
        );
      }
      bucket.tokens -= 1;
    },
  };
}

import { performance } from "node:perf_hooks";

/** Rendered `GET /v1/status` bodies by principal, each reused for a short while. */
export interface StatusBodyCache {
  /** The body rendered for `principal` at most `maxAgeMs` ago, if any. */
  get(principal: string): string | undefined;
  set(principal: string, body: string): void;
  /** Forgets every body: call when this process changes a key. */
  clear(): void;
}

// A handful of principals are polled in practice; a client asking for many distinct agents
// only empties the cache more often.
const MAX_ENTRIES = 64;

/**
 * The route already answers from a store read up to `maxAgeMs` old; reusing the body it rendered
 * keeps the same promise (a status describes the key as of at most `maxAgeMs` ago) and skips
 * the store read, the presenter and `JSON.stringify` for every poll but one in each interval.
 * Ages are measured on the monotonic clock: the bound is real time, whatever the app's clock
 * says. `maxAgeMs` 0 caches nothing. Throws nothing.
 */
export function createStatusBodyCache(maxAgeMs: number): StatusBodyCache {
  const entries = new Map<string, { body: string; renderedAt: number }>();
  return {
    get(principal) {
      const entry = entries.get(principal);
      if (entry === undefined) return undefined;
      return performance.now() - entry.renderedAt <= maxAgeMs ? entry.body : undefined;
    },
    set(principal, body) {
      if (maxAgeMs <= 0) return;
      if (entries.size >= MAX_ENTRIES && !entries.has(principal)) entries.clear();
      entries.set(principal, { body, renderedAt: performance.now() });
    },
    clear() {
      entries.clear();
    },
  };
}

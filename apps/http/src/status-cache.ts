import { performance } from "node:perf_hooks";

/** Rendered `GET /v1/status` bodies by principal, each reused for a short while. */
export interface StatusBodyCache {
  /** The body rendered for `principal` at most `maxAgeMs` ago, if any. */
  get(principal: string): string | undefined;
  /**
   * Renders `principal`'s body and keeps it, unless `clear()` ran while it was rendered (it may
   * describe the key from before the change). Rejects with `render`'s error, keeping nothing.
   */
  fill(principal: string, render: () => Promise<string>): Promise<string>;
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
 * says (`monotonicNow` is replaceable so tests need not sleep). `maxAgeMs` 0 caches nothing.
 * Throws nothing.
 */
export function createStatusBodyCache(
  maxAgeMs: number,
  monotonicNow: () => number = () => performance.now(),
): StatusBodyCache {
  const entries = new Map<string, { body: string; renderedAt: number }>();
  // Counts clear() calls: a render that one overtook is answered but not kept.
  let clears = 0;
  return {
    get(principal) {
      const entry = entries.get(principal);
      if (entry === undefined) return undefined;
      return monotonicNow() - entry.renderedAt <= maxAgeMs ? entry.body : undefined;
    },
    async fill(principal, render) {
      const clearsBefore = clears;
      const renderedAt = monotonicNow();
      const body = await render();
      if (maxAgeMs > 0 && clears === clearsBefore) {
        if (entries.size >= MAX_ENTRIES && !entries.has(principal)) entries.clear();
        // Aged from when the render began: its store read may be that old.
        entries.set(principal, { body, renderedAt });
      }
      return body;
    },
    clear() {
      clears += 1;
      entries.clear();
    },
  };
}

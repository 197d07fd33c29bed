import { performance } from "node:perf_hooks";

/** Rendered `GET /v1/status` bodies by principal, each reused for a short while. */
export interface StatusBodyCache {
  /** The body rendered for `principal` at most `maxAgeMs` ago, if any. */
  get(principal: string): string | undefined;
  /**
   * Renders `principal`'s body and keeps it, unless `clear()` ran while it was rendered (it may
   * describe the key from before the change). Rejects with `render`'s error, keeping nothing.
   * A fill while another for the same principal is in flight (and no `clear()` came between)
   * shares that render instead of starting its own.
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
  // Renders in flight, by principal. When a body expires under load, every poll that arrives
  // before the next one is rendered would otherwise read the store itself (on PostgreSQL, a
  // round trip each): they share the first one's render, which began after the body expired,
  // so it is as fresh as a render of their own.
  const inFlight = new Map<string, { body: Promise<string>; clears: number }>();
  return {
    get(principal) {
      const entry = entries.get(principal);
      if (entry === undefined) return undefined;
      return monotonicNow() - entry.renderedAt <= maxAgeMs ? entry.body : undefined;
    },
    fill(principal, render) {
      const shared = inFlight.get(principal);
      if (shared !== undefined && shared.clears === clears) return shared.body;
      const clearsBefore = clears;
      const renderedAt = monotonicNow();
      const body = render().then((text) => {
        if (maxAgeMs > 0 && clears === clearsBefore) {
          if (entries.size >= MAX_ENTRIES && !entries.has(principal)) entries.clear();
          // Aged from when the render began: its store read may be that old.
          entries.set(principal, { body: text, renderedAt });
        }
        return text;
      });
      if (maxAgeMs > 0) {
        const flight = { body, clears: clearsBefore };
        inFlight.set(principal, flight);
        const settled = () => {
          if (inFlight.get(principal) === flight) inFlight.delete(principal);
        };
        body.then(settled, settled);
      }
      return body;
    },
    clear() {
      clears += 1;
      entries.clear();
    },
  };
}

/** Time as the sandbox sees it; tests pass one in instead of waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** A clock that only moves when told to. */
export interface TestClock extends Clock {
  /** Moves the clock forward by `ms` milliseconds (a negative value moves it back). */
  advance(ms: number): void;
  /** Puts the clock at `ms` milliseconds since the epoch. */
  set(ms: number): void;
  /**
   * "Waits" `ms`: moves the clock forward by it and yields to the event loop once, so code that
   * retries or backs off on this clock (rekey's engine) costs a test no real time.
   */
  sleep(ms: number): Promise<void>;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** 2026-01-01T00:00:00.000Z: a fixed default start so test output is stable. */
const DEFAULT_TEST_CLOCK_START_MS = Date.UTC(2026, 0, 1);

/**
 * Creates a clock that stands still until `advance` or `set` moves it.
 * Throws a `RangeError` when given a non-finite time.
 */
export function createTestClock(startMs: number = DEFAULT_TEST_CLOCK_START_MS): TestClock {
  let currentMs = requireFinite(startMs);
  return {
    now: () => currentMs,
    advance: (ms) => {
      currentMs += requireFinite(ms);
    },
    set: (ms) => {
      currentMs = requireFinite(ms);
    },
    sleep: async (ms) => {
      currentMs += requireFinite(Math.max(0, ms));
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function requireFinite(ms: number): number {
  if (!Number.isFinite(ms)) throw new RangeError(`clock time must be a finite number, got ${ms}`);
  return ms;
}

/** Time as rekey sees it; tests inject one instead of waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Waits `ms` of this clock's time. A test clock moves itself forward instead of waiting, so
   * an engine retrying or backing off for seconds costs a test none. Absent: real time.
   */
  sleep?(ms: number): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now() };

export function isoAt(clock: Clock, offsetMs = 0): string {
  return new Date(clock.now() + offsetMs).toISOString();
}

/** Waits `ms` of `clock`'s time: its own `sleep`, else a timer. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  if (clock.sleep) return clock.sleep(ms);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

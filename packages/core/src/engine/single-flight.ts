/**
 * Work for one key at a time in this process, shared by everyone who asks while it runs.
 *
 * The flight is registered before `work` reaches its first `await`, so callers that arrive in
 * the same tick join it instead of starting their own (and each taking a store lock of its
 * own: with PostgreSQL, a lock session each).
 */
export interface SingleFlight<T> {
  /** The running work for `key`, if any. */
  running(key: string): Promise<T> | undefined;
  /** The running work for `key`, or `work` started now and registered before it awaits. */
  run(key: string, work: () => Promise<T>): Promise<T>;
}

/** A {@link SingleFlight} for one kind of work (rotations of a principal, one idempotency key). Throws nothing itself. */
export function createSingleFlight<T>(): SingleFlight<T> {
  const flights = new Map<string, Promise<T>>();
  return {
    running: (key) => flights.get(key),
    run(key, work) {
      const existing = flights.get(key);
      if (existing !== undefined) return existing;
      const flight: Promise<T> = (async () => work())().finally(() => {
        if (flights.get(key) === flight) flights.delete(key);
      });
      flights.set(key, flight);
      return flight;
    },
  };
}

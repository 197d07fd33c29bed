/**
 * Keeps deliveries finished in a long-running process (rekey-http, rekey-mcp): runs `finish`
 * at start, after every change of the store (a rotation by another process or replica), and
 * every `intervalMs` (a target's back-off running out). One run at a time; a change during a
 * run gets one more run after it.
 */
export interface DeliveryFinisherOptions {
  /** Finishes due deliveries, e.g. `rekey.finishDeliveries`. */
  finish(): Promise<unknown>;
  /** Subscribes to store changes, e.g. `store.watch`; returns an unsubscribe function. */
  watch(listener: () => void): () => void;
  intervalMs?: number;
  /** Told about a run that failed (the store unreachable...); the next run tries again. */
  onError?(error: unknown): void;
}

/** Starts the finisher; returns a function that stops it and waits for a run in flight. */
export function startDeliveryFinisher(options: DeliveryFinisherOptions): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const run = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = options
      .finish()
      .then(
        () => undefined,
        (error: unknown) => options.onError?.(error),
      )
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  const unsubscribe = options.watch(run);
  const timer = setInterval(run, options.intervalMs ?? 30_000);
  timer.unref();
  run();
  return async () => {
    stopped = true;
    clearInterval(timer);
    unsubscribe();
    await running;
  };
}

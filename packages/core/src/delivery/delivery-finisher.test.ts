import { describe, expect, it } from "vitest";
import { startDeliveryFinisher } from "./delivery-finisher.js";

describe("startDeliveryFinisher", () => {
  it("runs at start and after each store change, one run at a time, and stops", async () => {
    const listeners: (() => void)[] = [];
    let runs = 0;
    let release: () => void = () => {};
    const stop = startDeliveryFinisher({
      finish: () => {
        runs++;
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
      watch: (listener) => {
        listeners.push(listener);
        return () => listeners.splice(listeners.indexOf(listener), 1);
      },
    });
    expect(runs).toBe(1);
    // Three changes during a run: one more run after it, not three at once.
    for (let i = 0; i < 3; i++) for (const listener of listeners) listener();
    expect(runs).toBe(1);
    release();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(runs).toBe(2);
    release();
    const stopped = stop();
    await stopped;
    expect(listeners).toEqual([]);
    for (const listener of listeners) listener();
    expect(runs).toBe(2);
  });

  it("a failing run is reported and the next change runs again", async () => {
    const listeners: (() => void)[] = [];
    const errors: unknown[] = [];
    let runs = 0;
    const stop = startDeliveryFinisher({
      finish: async () => {
        runs++;
        throw new Error("store down");
      },
      watch: (listener) => {
        listeners.push(listener);
        return () => {};
      },
      onError: (error) => errors.push(error),
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    listeners[0]?.();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(runs).toBe(2);
    expect(errors).toHaveLength(2);
    await stop();
  });
});

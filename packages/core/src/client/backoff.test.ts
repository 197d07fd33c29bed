import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffDelayMs, DEFAULT_RETRY, parseRetryAfter, realSleep } from "./backoff.js";

describe("backoffDelayMs", () => {
  it("draws from [0, min(max, base * 2^n)] (full jitter)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (n, r) => {
          const delay = backoffDelayMs(n, DEFAULT_RETRY, () => r);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(2000, 100 * 2 ** n));
        },
      ),
    );
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0.5)).toBe(50);
    expect(backoffDelayMs(3, DEFAULT_RETRY, () => 0.5)).toBe(400);
    expect(backoffDelayMs(10, DEFAULT_RETRY, () => 0.999)).toBe(1998);
  });

  it("waits exactly Retry-After when it fits, and gives up when it is beyond maxDelayMs", () => {
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0, 1)).toBe(1000);
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0, 60)).toBeUndefined();
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2026, 0, 1);
  it("reads seconds and HTTP dates, ignores garbage", () => {
    expect(parseRetryAfter("3", now)).toBe(3);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe("realSleep", () => {
  it("rejects with the abort reason when aborted", async () => {
    const controller = new AbortController();
    const sleeping = realSleep(60_000, controller.signal);
    controller.abort(new Error("stop"));
    await expect(sleeping).rejects.toThrow("stop");
  });
});

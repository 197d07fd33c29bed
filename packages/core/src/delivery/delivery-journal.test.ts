import { describe, expect, it } from "vitest";
import {
  deliveryBackoffMs,
  deliveryDue,
  deliveryLeftBehind,
  deliveryStatusOf,
} from "./delivery-journal.js";
import type { DeliveryTarget } from "./target-schema.js";

const target = (state?: DeliveryTarget["state"]): DeliveryTarget => ({
  id: "webhook-1",
  kind: "webhook",
  url: "https://ops.example/hook",
  secretFile: "/etc/rekey/hook.secret",
  ...(state ? { state } : {}),
});

describe("delivery back-off and status", () => {
  it("backs off 30 s, doubling, and never waits more than an hour (a receiver down for an hour is tried again within the hour)", () => {
    expect(
      [1, 2, 3, 4, 5, 6, 7, 8, 20].map((attempts) => deliveryBackoffMs(attempts) / 1000),
    ).toEqual([30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
  });

  it("is due when the target lacks the key and its back-off for that key has run out", () => {
    const failed = target({
      status: "failed",
      fingerprint: "fp:new",
      deliveredFingerprint: "fp:old",
      at: "2026-12-02T12:00:00.000Z",
      attempts: 3,
      nextAttemptAt: "2026-12-02T12:02:00.000Z",
      error: { code: "UPSTREAM_UNAVAILABLE", message: "answered 500" },
    });
    expect(deliveryDue(failed, "fp:new", Date.parse("2026-12-02T12:01:59.000Z"))).toBe(false);
    expect(deliveryDue(failed, "fp:new", Date.parse("2026-12-02T12:02:00.000Z"))).toBe(true);
    // A newer rotation is due at once: the back-off was for the older key.
    expect(deliveryDue(failed, "fp:newer", Date.parse("2026-12-02T12:00:01.000Z"))).toBe(true);
    expect(deliveryDue(target(), "fp:new", 0)).toBe(true);
    expect(deliveryDue(failed, undefined, 0)).toBe(false);
    const record = {
      faucet: "https://f",
      principal: "agent:7",
      fingerprint: "fp:new",
      deliveries: [failed],
    };
    expect(deliveryStatusOf(record)).toEqual([
      expect.objectContaining({
        state: "failing",
        deliveredFingerprint: "fp:old",
        nextAttemptAt: "2026-12-02T12:02:00.000Z",
      }),
    ]);
    expect(deliveryStatusOf({ ...record, fingerprint: "fp:old" })[0]?.state).toBe("current");
    expect(deliveryStatusOf({ ...record, deliveries: [target()] })[0]?.state).toBe("stale");
  });

  it("tells targets left behind (never tried at this key, or cut off while pending) from failing ones", () => {
    const at = "2026-12-02T12:00:00.000Z";
    const pending = target({
      status: "pending",
      fingerprint: "fp:new",
      deliveredFingerprint: "fp:old",
      at,
      attempts: 0,
    });
    const failed = target({
      status: "failed",
      fingerprint: "fp:new",
      at,
      attempts: 1,
      error: { code: "X", message: "x" },
    });
    const delivered = target({
      status: "delivered",
      fingerprint: "fp:new",
      deliveredFingerprint: "fp:new",
      at,
      attempts: 0,
    });
    expect(deliveryLeftBehind(target(), "fp:new")).toBe(true);
    expect(deliveryLeftBehind(pending, "fp:new")).toBe(true);
    expect(deliveryLeftBehind(failed, "fp:new")).toBe(false);
    // It failed at an older key: the newer one was never tried.
    expect(deliveryLeftBehind(failed, "fp:newer")).toBe(true);
    expect(deliveryLeftBehind(delivered, "fp:new")).toBe(false);
  });
});

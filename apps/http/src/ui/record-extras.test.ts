import type { PrincipalRecord } from "@rekey/core";
import { describe, expect, it } from "vitest";
import { ageClass, deliveriesOf, policyOf } from "./record-extras.js";

/**
 * The console shows what delivery targets and rotation policies add to a record, read loosely so
 * that it needs none of their modules: current/stale/failing against the record's fingerprint,
 * and the key age against the policy's maximum.
 */

const record = (extra: Record<string, unknown>) =>
  ({
    faucet: "http://127.0.0.1:1/api",
    principal: "agent:7",
    fingerprint: "fp:new",
    ...extra,
  }) as unknown as PrincipalRecord;

describe("deliveriesOf", () => {
  it("names each target current, stale or failing as core's status does, with why", () => {
    const target = (id: string, state: Record<string, unknown>) => ({
      id,
      kind: "dotenv",
      path: `/srv/${id}.env`,
      variable: "LIGHTNING_WALLET_API_KEY",
      state,
    });
    const views = deliveriesOf(
      record({
        deliveries: [
          target("a", {
            deliveredFingerprint: "fp:new",
            status: "delivered",
            at: "2026-01-01T00:00:00.000Z",
          }),
          target("b", {
            deliveredFingerprint: "fp:old",
            status: "delivered",
            at: "2026-01-01T00:00:00.000Z",
          }),
          target("c", {
            deliveredFingerprint: "fp:old",
            status: "failed",
            at: "2026-01-01T00:00:00.000Z",
            error: { code: "STORE_UNAVAILABLE", message: "read-only file system" },
          }),
        ],
      }),
    );
    expect(views).toEqual([
      { target: "a", description: expect.stringContaining("/srv/a.env"), state: "current" },
      {
        target: "b",
        description: expect.stringContaining("/srv/b.env"),
        state: "stale",
        detail: "holds fp:old",
      },
      {
        target: "c",
        description: expect.stringContaining("/srv/c.env"),
        state: "failing",
        detail: "STORE_UNAVAILABLE: read-only file system",
      },
    ]);
    expect(deliveriesOf(record({}))).toEqual([]);
  });
});

describe("policyOf and ageClass", () => {
  it("colours a key past 80 % of the policy's maximum age as a warning, past it as bad", () => {
    const policy = policyOf(
      record({
        key: "lf_x",
        fingerprint: "fp:000000000000",
        savedAt: "2026-01-01T00:00:00.000Z",
        source: "create",
        policy: { maxAgeSeconds: 30 * 86_400, setAt: "2026-01-01T00:00:00.000Z" },
      }),
      Date.parse("2026-01-02T00:00:00.000Z"),
    );
    expect(policy.maxAgeMs).toBe(30 * 86_400_000);
    expect(ageClass(20 * 86_400_000, policy)).toBe("");
    expect(ageClass(25 * 86_400_000, policy)).toBe("warn");
    expect(ageClass(31 * 86_400_000, policy)).toBe("bad");
    expect(ageClass(400 * 86_400_000, policyOf(record({})))).toBe("");
  });

  it("reads rekey's own policy and computes its next rotation", () => {
    const policy = policyOf(
      record({
        key: "lf_x",
        fingerprint: "fp:000000000000",
        savedAt: "2026-01-01T00:00:00.000Z",
        source: "create",
        policy: { maxAgeSeconds: 7 * 86_400, setAt: "2026-01-01T00:00:00.000Z" },
      }),
      Date.parse("2026-01-02T00:00:00.000Z"),
    );
    expect(policy).toEqual({
      maxAgeMs: 7 * 86_400_000,
      nextRotationAt: "2026-01-08T00:00:00.000Z",
    });
  });
});

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
  it("names each target current, stale, failing or pending against the record's fingerprint", () => {
    const views = deliveriesOf(
      record({
        deliveries: [
          { kind: "dotenv", path: "/srv/.env", fingerprint: "fp:new" },
          { kind: "lightning-wallet", path: "/home/a/credentials.json", fingerprint: "fp:old" },
          { kind: "webhook", url: "https://hooks/x", error: "timed out", fingerprint: "fp:old" },
          { kind: "exec", name: "reload", status: "pending" },
          "not an object",
        ],
      }),
    );
    expect(views).toEqual([
      { target: "/srv/.env", state: "current" },
      { target: "/home/a/credentials.json", state: "stale", detail: "fp:old" },
      { target: "https://hooks/x", state: "failing", detail: "timed out" },
      { target: "reload", state: "pending" },
    ]);
  });

  it("reads targets kept as a map too, and none from a record without them", () => {
    expect(
      deliveriesOf(record({ deliveries: { a: { name: "a", fingerprint: "fp:new" } } })),
    ).toEqual([{ target: "a", state: "current" }]);
    expect(deliveriesOf(record({}))).toEqual([]);
  });
});

describe("policyOf and ageClass", () => {
  it("colours a key past 80 % of the policy's maximum age as a warning, past it as bad", () => {
    const policy = policyOf(
      record({ policy: { maxAgeDays: 30, nextRotationAt: "2027-01-01T00:00:00Z" } }),
    );
    expect(policy).toEqual({ maxAgeMs: 30 * 86_400_000, nextRotationAt: "2027-01-01T00:00:00Z" });
    expect(ageClass(20 * 86_400_000, policy)).toBe("");
    expect(ageClass(25 * 86_400_000, policy)).toBe("warn");
    expect(ageClass(31 * 86_400_000, policy)).toBe("bad");
    expect(ageClass(400 * 86_400_000, policyOf(record({})))).toBe("");
  });
});

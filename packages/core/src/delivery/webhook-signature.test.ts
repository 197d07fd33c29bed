import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { signWebhook, verifyWebhookSignature } from "./webhook-signature.js";

const secret = "whsec-0123456789abcdef0123456789";
const body = JSON.stringify({ type: "delivery", newFingerprint: "fp:abc" });

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isRekeyError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("webhook signatures", () => {
  it("signs HMAC-SHA256 over '<t>.<body>' that a receiver written from the docs can check", () => {
    const header = signWebhook({ secret, body, timestamp: 1_700_000_000 });
    const expected = createHmac("sha256", secret).update(`1700000000.${body}`).digest("hex");
    expect(header).toBe(`t=1700000000,v1=${expected}`);
    expect(verifyWebhookSignature({ secret, body, header, now: 1_700_000_100 })).toBe(
      1_700_000_000,
    );
  });

  it("refuses a replay outside the window, a changed body, a wrong secret and a bad header", () => {
    const header = signWebhook({ secret, body, timestamp: 1_700_000_000 });
    expect(
      refusal(() => verifyWebhookSignature({ secret, body, header, now: 1_700_000_301 })),
    ).toMatch(/UNAUTHORIZED: .*window/);
    expect(
      refusal(() =>
        verifyWebhookSignature({ secret, body: `${body} `, header, now: 1_700_000_000 }),
      ),
    ).toMatch(/does not match/);
    expect(
      refusal(() =>
        verifyWebhookSignature({ secret: `${secret}x`, body, header, now: 1_700_000_000 }),
      ),
    ).toMatch(/does not match/);
    for (const bad of [
      undefined,
      "",
      "t=1",
      "v1=00",
      "t=x,v1=00",
      `t=1,t=2,v1=${"0".repeat(64)}`,
    ]) {
      expect(refusal(() => verifyWebhookSignature({ secret, body, header: bad, now: 1 }))).toMatch(
        /^UNAUTHORIZED/,
      );
    }
  });

  it("accepts any of several v1 signatures, so a sender can roll its secret", () => {
    const other = signWebhook({ secret: "another-secret-0123456789", body, timestamp: 5 });
    const mine = signWebhook({ secret, body, timestamp: 5 });
    const header = `${other},${mine.split(",")[1]}`;
    expect(verifyWebhookSignature({ secret, body, header, now: 5 })).toBe(5);
  });

  it("refuses a short secret on both sides", () => {
    expect(refusal(() => signWebhook({ secret: "short", body, timestamp: 1 }))).toMatch(
      /^CONFIG_INVALID/,
    );
    expect(
      refusal(() => verifyWebhookSignature({ secret: " short \n", body, header: "t=1", now: 1 })),
    ).toMatch(/^CONFIG_INVALID/);
  });
});

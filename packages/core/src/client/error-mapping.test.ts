import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../errors.js";
import {
  ERROR_TEXT_RULES,
  errorCodeFromText,
  FAUCET_CODE_MAP,
  faucetFailureError,
  scrubSecrets,
} from "./error-mapping.js";

const clock = { now: () => Date.UTC(2026, 0, 1) };
const context = { action: "whoami", secrets: [], clock };

describe("errorCodeFromText (the real service's error text)", () => {
  it.each([
    ["Invalid API key", "UNAUTHORIZED"],
    ["Unauthorized", "UNAUTHORIZED"],
    ["Not authenticated", "UNAUTHORIZED"],
    ["Withdrawal cooldown active. Try again later.", "COOLDOWN_ACTIVE"],
    ["Agent not found", "NOT_FOUND"],
    ["Rate limit exceeded", "RATE_LIMITED"],
    ["Too many requests", "RATE_LIMITED"],
    ["Insufficient balance", "INSUFFICIENT_BALANCE"],
    ["Only operators can create agents", "FORBIDDEN"],
    ["Action not allowed for agents", "FORBIDDEN"],
    ["Permission denied", "FORBIDDEN"],
    ["name is required", "INVALID_INPUT"],
    ["Invalid agent_id", "INVALID_INPUT"],
    ["amount_sats must be positive", "INVALID_INPUT"],
    ["Lightning node exploded", "INTERNAL"],
    ["", "INTERNAL"],
  ] as const)("%j -> %s", (text, code) => {
    expect(errorCodeFromText(text)).toBe(code);
  });

  it("never throws and always yields a known code, for any text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 400 }), (text) => {
        expect(ERROR_CODES).toContain(errorCodeFromText(text));
      }),
    );
  });

  it("maps every rule to a known code", () => {
    for (const [, code] of ERROR_TEXT_RULES) expect(ERROR_CODES).toContain(code);
    for (const code of Object.values(FAUCET_CODE_MAP)) expect(ERROR_CODES).toContain(code);
  });
});

describe("faucetFailureError", () => {
  it("prefers the sandbox code over the text", () => {
    const error = faucetFailureError(
      { success: false, error: "Invalid something", code: "forbidden" },
      context,
    );
    expect(error.code).toBe("FORBIDDEN");
    expect(error.details.upstreamCode).toBe("forbidden");
  });

  it("falls back to the text when the code is one it does not know", () => {
    const error = faucetFailureError(
      { success: false, error: "Agent not found", code: "brand_new_code" },
      context,
    );
    expect(error.code).toBe("NOT_FOUND");
  });

  it("carries cooldownUntil and retryAfterSeconds on a cooldown refusal", () => {
    const error = faucetFailureError(
      {
        success: false,
        error: "Withdrawals are blocked after a key rotation",
        code: "cooldown_active",
        cooldown_until: "2026-01-01T00:30:00Z",
        seconds_remaining: 1800,
      },
      context,
    );
    expect(error.code).toBe("COOLDOWN_ACTIVE");
    expect(error.details.cooldownUntil).toBe("2026-01-01T00:30:00.000Z");
    expect(error.details.retryAfterSeconds).toBe(1800);
  });

  it("derives the seconds from cooldown_until when seconds_remaining is missing", () => {
    const error = faucetFailureError(
      { success: false, error: "Cooldown active", cooldown_until: "2026-01-01T01:00:00Z" },
      context,
    );
    expect(error.details.retryAfterSeconds).toBe(3600);
  });

  it("reports unrecognised text as INTERNAL, quoting it", () => {
    const error = faucetFailureError({ success: false, error: "The moon is full" }, context);
    expect(error.code).toBe("INTERNAL");
    expect(error.message).toContain("The moon is full");
  });

  it("never throws, never yields an unknown code, never echoes a secret we sent", () => {
    const secretArbitrary = fc
      .string({ minLength: 43, maxLength: 43, unit: "grapheme-ascii" })
      .map((tail) => `lfr_${tail.replace(/[^A-Za-z0-9_-]/g, "x")}`);
    fc.assert(
      fc.property(fc.anything(), fc.string(), secretArbitrary, (reply, text, secret) => {
        const withSecret = { success: false, error: `${text} ${secret} ${text}` };
        for (const candidate of [reply, withSecret]) {
          const error = faucetFailureError(candidate, { ...context, secrets: [secret] });
          expect(ERROR_CODES).toContain(error.code);
          expect(JSON.stringify(error.toJSON())).not.toContain(secret);
        }
      }),
    );
  });
});

describe("scrubSecrets", () => {
  it("removes the secrets, control characters and excess length", () => {
    const text = scrubSecrets(`bad code lfr_abcdef\u0007 ${"x".repeat(400)}`, ["lfr_abcdef"]);
    expect(text).not.toContain("lfr_abcdef");
    expect(text).not.toContain("\u0007");
    expect(text.length).toBeLessThanOrEqual(301);
  });
});

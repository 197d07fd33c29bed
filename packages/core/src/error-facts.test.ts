import { describe, expect, it } from "vitest";
import { errorFacts } from "./error-facts.js";
import { RekeyError } from "./errors.js";
import { errorView } from "./vocabulary.js";

const now = Date.parse("2026-12-02T12:00:00.000Z");

describe("errorFacts", () => {
  it("redacts a key in the issues as in the message (zod names a field it does not know)", () => {
    const key = `lf_${"A1b2".repeat(8)}`;
    const refused = new RekeyError("INVALID_INPUT", `Unrecognized key: "${key}"`, {
      details: { issues: [`Unrecognized key: "${key}"`] },
    });
    const facts = errorFacts(refused, now);
    expect(JSON.stringify(facts)).not.toContain(key);
    expect(facts.issues).toEqual(['Unrecognized key: "lf_…[redacted]"']);
  });

  it("reads a cooldown once: until, seconds left on the thrower's clock, retry-after, principal", () => {
    const refused = new RekeyError("COOLDOWN_ACTIVE", "Agent 7 is inside its cooldown", {
      hint: "Wait, or pass --force.",
      details: {
        principal: "agent 7",
        cooldownUntil: "2026-12-02T12:30:00.000Z",
        retryAfterSeconds: 1799.2,
      },
    });
    expect(errorView(errorFacts(refused, now))).toEqual({
      code: "COOLDOWN_ACTIVE",
      message: "Agent 7 is inside its cooldown",
      hint: "Wait, or pass --force.",
      principal: { kind: "agent", agent_id: 7 },
      cooldown_until: "2026-12-02T12:30:00.000Z",
      cooldown_remaining_seconds: 1800,
      retry_after_seconds: 1800,
    });
  });

  it("counts the seconds left from `now` when the thrower gave none", () => {
    const refused = new RekeyError("COOLDOWN_ACTIVE", "cooling", {
      details: { principal: { kind: "operator" }, cooldownUntil: "2026-12-02T12:01:00.000Z" },
    });
    expect(errorFacts(refused, now)).toMatchObject({
      principal: { kind: "operator" },
      cooldown: { remainingSeconds: 60 },
      retryAfterSeconds: 60,
    });
  });

  it("gives a person the thrower's hint and a model one that names tools", () => {
    const missing = new RekeyError("NOT_FOUND", "No key is stored for the operator", {
      hint: "Run `rekey register` or `rekey login` first.",
      details: { principal: "operator", missing: "key" },
    });
    expect(errorFacts(missing, now).hint).toBe("Run `rekey register` or `rekey login` first.");
    const forModel = errorFacts(missing, now, { audience: "model" }).hint;
    expect(forModel).toMatch(/holds no key/);
    expect(forModel).not.toMatch(/list_agents/);
  });

  it("never passes a key through, and turns anything else into INTERNAL", () => {
    const key = `lf_${"a".repeat(40)}`;
    const facts = errorFacts(new Error(`boom ${key}`), now, { audience: "model" });
    expect(facts.code).toBe("INTERNAL");
    expect(JSON.stringify(facts)).not.toContain(key);
    expect(
      errorFacts(new RekeyError("FORBIDDEN", "no", { details: { principal: "agent x" } }), now)
        .principal,
    ).toBeUndefined();
  });
});

import { AGENT_COOLDOWN_MS, OPERATOR_COOLDOWN_MS } from "@rekey/sandbox";
import { describe, expect, it } from "vitest";
import { COOLDOWN_MINUTES } from "./cooldowns.js";

describe("COOLDOWN_MINUTES", () => {
  it("are the cooldowns the sandbox faucet enforces", () => {
    expect(COOLDOWN_MINUTES.operator * 60_000).toBe(OPERATOR_COOLDOWN_MS);
    expect(COOLDOWN_MINUTES.agent * 60_000).toBe(AGENT_COOLDOWN_MS);
  });
});

import { describe, expect, it } from "vitest";
import { createTokenVerifier, hashToken, type TokenConfig } from "./tokens.js";

const monitor: TokenConfig = {
  name: "monitor",
  sha256: hashToken("tok_monitor"),
  scopes: ["status"],
};
const deploy: TokenConfig = {
  name: "deploy",
  sha256: hashToken("tok_deploy"),
  scopes: ["status", "rotate"],
};

describe("createTokenVerifier", () => {
  it("admits each configured token with its name and scopes, on every call", () => {
    const verify = createTokenVerifier([monitor, deploy]);
    for (let call = 0; call < 3; call += 1) {
      expect(verify("Bearer tok_deploy")?.name).toBe("deploy");
      expect([...(verify("Bearer tok_deploy")?.scopes ?? [])]).toEqual(["status", "rotate"]);
      expect(verify("bearer   tok_monitor ")?.name).toBe("monitor");
    }
  });

  it("refuses unknown, missing and malformed tokens, also after a valid one was admitted", () => {
    const verify = createTokenVerifier([monitor]);
    expect(verify("Bearer tok_monitor")?.name).toBe("monitor");
    for (const header of [
      undefined,
      "",
      "Bearer tok_monitorX",
      "Bearer tok_monito",
      "Basic tok_monitor",
      "Bearer tok_monitor extra",
      "tok_monitor",
    ]) {
      expect(verify(header)).toBeUndefined();
      expect(verify(header)).toBeUndefined();
    }
  });

  it("keeps admitting a token after more distinct headers than it remembers", () => {
    const verify = createTokenVerifier([monitor]);
    const first = "Bearer tok_monitor";
    expect(verify(first)?.name).toBe("monitor");
    // 300 spellings of the same token (more spaces each) push the first out of the cache.
    for (let spaces = 2; spaces < 302; spaces += 1) {
      expect(verify(`Bearer${" ".repeat(spaces)}tok_monitor`)?.name).toBe("monitor");
    }
    expect(verify(first)?.name).toBe("monitor");
    expect(verify("Bearer tok_other")).toBeUndefined();
  });
});

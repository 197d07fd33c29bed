import { describe, expect, it } from "vitest";
import { DEFAULT_API_URL, resolveBaseUrl, validateBaseUrl } from "./base-url.js";
import { expectRekeyError } from "./client.test-helper.js";
import { createFaucetClient } from "./faucet-client.js";

describe("resolveBaseUrl", () => {
  it("prefers REKEY_API_URL, then LIGHTNING_WALLET_API_URL, then the real service", () => {
    const rekey = "http://127.0.0.1:4000/ai-agents/api";
    const wallet = "https://wallet.example/ai-agents/api";
    expect(resolveBaseUrl({ REKEY_API_URL: rekey, LIGHTNING_WALLET_API_URL: wallet })).toBe(rekey);
    expect(resolveBaseUrl({ LIGHTNING_WALLET_API_URL: wallet })).toBe(wallet);
    expect(resolveBaseUrl({ REKEY_API_URL: "  ", LIGHTNING_WALLET_API_URL: wallet })).toBe(wallet);
    expect(resolveBaseUrl({})).toBe(DEFAULT_API_URL);
    expect(DEFAULT_API_URL).toBe("https://lightningfaucet.com/ai-agents/api");
  });

  it("names the variable that holds a bad URL", async () => {
    const error = await expectRekeyError(
      Promise.resolve().then(() => resolveBaseUrl({ REKEY_API_URL: "http://evil.example/api" })),
      "CONFIG_INVALID",
    );
    expect(error.message).toContain("REKEY_API_URL");
  });
});

describe("validateBaseUrl", () => {
  it.each([
    "https://lightningfaucet.com/ai-agents/api",
    "http://127.0.0.1:8080/ai-agents/api",
    "http://localhost:8080/",
    "http://[::1]:8080/ai-agents/api",
  ])("accepts %s", (url) => {
    expect(validateBaseUrl(url).href).toBe(new URL(url).href);
  });

  it.each([
    "http://lightningfaucet.com/ai-agents/api",
    "http://192.168.1.10/ai-agents/api",
    "ftp://localhost/",
    "not a url",
    "https://user:pass@lightningfaucet.com/",
  ])("refuses %s with CONFIG_INVALID", async (url) => {
    await expectRekeyError(
      Promise.resolve().then(() => validateBaseUrl(url)),
      "CONFIG_INVALID",
    );
  });
});

describe("createFaucetClient options", () => {
  it("refuses a plain-http remote URL and nonsense timeouts", async () => {
    await expectRekeyError(
      Promise.resolve().then(() => createFaucetClient({ baseUrl: "http://example.com/api" })),
      "CONFIG_INVALID",
    );
    await expectRekeyError(
      Promise.resolve().then(() =>
        createFaucetClient({ baseUrl: DEFAULT_API_URL, requestTimeoutMs: -1 }),
      ),
      "CONFIG_INVALID",
    );
    await expectRekeyError(
      Promise.resolve().then(() =>
        createFaucetClient({ baseUrl: DEFAULT_API_URL, retry: { attempts: 0 } }),
      ),
      "CONFIG_INVALID",
    );
  });
});

import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  expectNoSecretInErrors,
  expectRekeyError,
  type FakeReply,
  type FakeRequest,
  recordingSleep,
  startFakeFaucet,
} from "./client.test-helper.js";
import { createFaucetClient } from "./faucet-client.js";
import { closeAllDispatchers } from "./transport.js";

// The real service answers refusals with `error` text only (no `code`), copies cooldown fields
// into 200 replies, and has shapes the sandbox never sends (aliases, odd dates). This fake
// answers like that; everything else is tested against the sandbox.

const KEY = `lf_${"k".repeat(43)}`;
const NEW_KEY = `lf_${"n".repeat(43)}`;
const RECOVERY = "lfr_recovery-code-of-the-operator-0123456789";
const secrets = [KEY, NEW_KEY, RECOVERY];

let answer: (request: FakeRequest) => FakeReply = () => ({ body: { success: true } });
const fake = await startFakeFaucet((request) => answer(request));

function client(options: { requestTimeoutMs?: number } = {}) {
  const { sleep, waits } = recordingSleep();
  return { client: createFaucetClient({ baseUrl: fake.url, sleep, ...options }), waits };
}

afterEach(() => {
  fake.requests.length = 0;
});

afterAll(async () => {
  expect(expectNoSecretInErrors(secrets)).toBeGreaterThan(20);
  await closeAllDispatchers();
  await fake.close();
});

describe("the request on the wire", () => {
  it("POSTs a JSON body with action and api_key, and no request_id unless given", async () => {
    answer = () => ({ body: { success: true, balance_sats: 7 } });
    await client().client.getBalance(KEY);
    answer = () => ({ body: { success: true, api_key: NEW_KEY } });
    await client().client.regenerateAgentKey(KEY, { agentId: 5 });
    expect(fake.requests).toEqual([
      {
        method: "POST",
        contentType: "application/json",
        body: { action: "get_balance", api_key: KEY },
      },
      {
        method: "POST",
        contentType: "application/json",
        body: { action: "regenerate_agent_key", api_key: KEY, agent_id: 5 },
      },
    ]);
  });

  it("reuses one keep-alive connection across clients of the same origin", async () => {
    answer = () => ({ body: { success: true, balance_sats: 1 } });
    const before = fake.connections();
    const first = client().client;
    const second = client().client;
    for (let round = 0; round < 3; round += 1) {
      await first.getBalance(KEY);
      await second.getBalance(KEY);
    }
    expect(fake.connections() - before).toBeLessThanOrEqual(1);
  });
});

describe("error text without a code", () => {
  it.each([
    ["Invalid API key", "UNAUTHORIZED"],
    ["Agent not found", "NOT_FOUND"],
    ["Rate limit exceeded, slow down", "RATE_LIMITED"],
    ["Insufficient balance", "INSUFFICIENT_BALANCE"],
    ["Only operators can regenerate agent keys", "FORBIDDEN"],
    ["agent_id is required", "INVALID_INPUT"],
  ] as const)("%j -> %s, not retried for a rotation", async (text, code) => {
    answer = () => ({ body: { success: false, error: text } });
    const error = await expectRekeyError(
      client().client.regenerateAgentKey(KEY, { agentId: 3 }),
      code,
    );
    expect(error.message).toContain(text);
    expect(error.details.upstreamCode).toBeUndefined();
    expect(fake.requests).toHaveLength(1);
  });

  it("reads cooldown_until and seconds_remaining from a 200 refusal", async () => {
    answer = () => ({
      body: {
        success: false,
        error: "Withdrawal cooldown active after key regeneration",
        cooldown_until: "2026-03-01T12:30:00Z",
        seconds_remaining: 1799.2,
      },
    });
    const error = await expectRekeyError(
      client().client.withdraw(KEY, { invoice: "lnbc10n1xyz" }),
      "COOLDOWN_ACTIVE",
    );
    expect(error.details.cooldownUntil).toBe("2026-03-01T12:30:00.000Z");
    expect(error.details.retryAfterSeconds).toBe(1800);
    expect(fake.requests[0]?.body).toEqual({
      action: "withdraw",
      api_key: KEY,
      invoice: "lnbc10n1xyz",
    });
  });

  it("reports unrecognised refusals as INTERNAL with the text, minus any secret", async () => {
    answer = () => ({
      body: { success: false, error: `Backend hiccup for ${KEY} and ${RECOVERY}` },
    });
    const error = await expectRekeyError(client().client.recover(RECOVERY), "INTERNAL");
    expect(error.message).toContain("Backend hiccup");
    expect(error.message).not.toContain(RECOVERY);
    const keyEcho = await expectRekeyError(client().client.whoami(KEY), "INTERNAL");
    expect(keyEcho.message).not.toContain(KEY);
  });

  it("a refusal with a code but no text still maps", async () => {
    answer = () => ({ body: { success: false, code: "not_found" } });
    await expectRekeyError(client().client.listAgents(KEY), "NOT_FOUND");
  });
});

describe("reply shapes", () => {
  it("accepts new_api_key for a rotation and agent_api_key for a new agent", async () => {
    answer = () => ({
      body: {
        success: true,
        new_api_key: NEW_KEY,
        cooldown_until: "2026-03-01 13:00:00",
        extra: 1,
      },
    });
    const rotation = await client().client.regenerateOperatorKey(KEY, { requestId: "r1" });
    // A date-time without a zone is read as UTC; no echo of request_id means not honoured.
    expect(rotation).toEqual({
      apiKey: NEW_KEY,
      cooldownUntil: "2026-03-01T13:00:00.000Z",
      requestIdHonoured: false,
    });

    answer = () => ({ body: { success: true, agent_id: "12", agent_api_key: NEW_KEY, name: "b" } });
    expect(await client().client.createAgent(KEY, { name: "b" })).toEqual({
      agentId: 12,
      apiKey: NEW_KEY,
      name: "b",
    });
  });

  it("honours request_id only when the same id is echoed", async () => {
    answer = (request) => ({
      body: { success: true, api_key: NEW_KEY, request_id: `${String(request.body.request_id)}x` },
    });
    const mismatched = await client().client.regenerateOperatorKey(KEY, { requestId: "r2" });
    expect(mismatched.requestIdHonoured).toBe(false);
    answer = (request) => ({
      body: { success: true, api_key: NEW_KEY, request_id: request.body.request_id },
    });
    const echoed = await client().client.regenerateOperatorKey(KEY, { requestId: "r2" });
    expect(echoed.requestIdHonoured).toBe(true);
  });

  it("keeps the new key even when message and cooldown_until are garbage", async () => {
    answer = () => ({
      body: { success: true, api_key: NEW_KEY, message: 42, cooldown_until: "whenever" },
    });
    expect(await client().client.regenerateOperatorKey(KEY)).toEqual({
      apiKey: NEW_KEY,
      requestIdHonoured: false,
    });
  });

  it.each([
    ["no key", { success: true, message: "API key regenerated" }],
    ["an empty key", { success: true, api_key: "  " }],
    ["a non-string key", { success: true, api_key: 123 }],
  ])("a rotation reply with %s is invalid, with outcome unknown", async (_label, body) => {
    answer = () => ({ body });
    const error = await expectRekeyError(
      client().client.regenerateOperatorKey(KEY),
      "UPSTREAM_INVALID_RESPONSE",
    );
    expect(error.details.outcomeUnknown).toBe(true);
  });

  it.each([
    ["missing success flag", { api_key: NEW_KEY }],
    ["a JSON array", [1, 2]],
    ["a non-JSON body", "<html>oops</html>"],
    ["success as a string", { success: "true", balance_sats: 1 }],
    ["a wrong field type", { success: true, balance_sats: -5 }],
  ])("%s is an invalid reply, and a read is not retried for it", async (_label, body) => {
    answer = () => ({ body });
    const error = await expectRekeyError(
      client().client.getBalance(KEY),
      "UPSTREAM_INVALID_RESPONSE",
    );
    expect(error.details.outcomeUnknown).toBeUndefined();
    expect(fake.requests).toHaveLength(1);
  });

  it("a whoami of an unknown principal type is invalid", async () => {
    answer = () => ({
      body: { success: true, type: "robot", id: 1, name: "x", balance_sats: 0 },
    });
    await expectRekeyError(client().client.whoami(KEY), "UPSTREAM_INVALID_RESPONSE");
  });

  it("a reply over 1 MiB is refused", async () => {
    answer = () => ({ body: { success: true, balance_sats: 1, padding: "x".repeat(1_100_000) } });
    await expectRekeyError(client().client.getBalance(KEY), "UPSTREAM_INVALID_RESPONSE");
  });
});

describe("HTTP statuses", () => {
  it("429 with Retry-After: a rotation fails at once with the wait; a read waits and retries", async () => {
    answer = () => ({
      status: 429,
      body: { success: false, error: "Too many requests" },
      headers: { "retry-after": "1" },
    });
    const rotation = await expectRekeyError(
      client().client.regenerateOperatorKey(KEY),
      "RATE_LIMITED",
    );
    expect(rotation.details.retryAfterSeconds).toBe(1);
    expect(fake.requests).toHaveLength(1);

    fake.requests.length = 0;
    const reader = client();
    await expectRekeyError(reader.client.whoami(KEY), "RATE_LIMITED");
    expect(reader.waits).toEqual([1000, 1000]);
    expect(fake.requests).toHaveLength(3);
  });

  it("429 with a Retry-After beyond maxDelayMs is not retried", async () => {
    answer = () => ({ status: 429, body: "", headers: { "retry-after": "120" } });
    const reader = client();
    const error = await expectRekeyError(reader.client.whoami(KEY), "RATE_LIMITED");
    expect(error.details.retryAfterSeconds).toBe(120);
    expect(fake.requests).toHaveLength(1);
  });

  it("503 is UPSTREAM_UNAVAILABLE with the status", async () => {
    answer = () => ({ status: 503, body: "<h1>maintenance</h1>" });
    const error = await expectRekeyError(client().client.getBalance(KEY), "UPSTREAM_UNAVAILABLE");
    expect(error.details.upstreamStatus).toBe(503);
    expect(fake.requests).toHaveLength(3);
  });

  it("400 with a code is mapped; 400 without one and other 4xx are invalid replies", async () => {
    answer = () => ({
      status: 400,
      body: { success: false, code: "invalid_request", error: "bad" },
    });
    await expectRekeyError(client().client.getBalance(KEY), "INVALID_INPUT");
    answer = () => ({ status: 400, body: { success: false, error: "Invalid API key" } });
    await expectRekeyError(client().client.getBalance(KEY), "UPSTREAM_INVALID_RESPONSE");
    answer = () => ({ status: 401, body: { success: false, error: "Invalid API key" } });
    const error = await expectRekeyError(
      client().client.getBalance(KEY),
      "UPSTREAM_INVALID_RESPONSE",
    );
    expect(error.details.upstreamStatus).toBe(401);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createAgent,
  observe,
  ok,
  refused,
  registerOperator,
  startOnTestClock,
  text,
} from "./conformance.test-helper.js";
import { API_KEY_PATTERN } from "./secrets.js";
import { type RunningSandbox, startSandbox } from "./server.js";

let sandbox: RunningSandbox;
let url: string;

beforeAll(async () => {
  ({ sandbox, url } = await startOnTestClock());
});
afterAll(() => sandbox.close());

describe("transport", () => {
  it("listens on loopback and answers on /ai-agents/api and /", async () => {
    expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ai-agents\/api$/);
    expect(sandbox.origin).toBe(`http://127.0.0.1:${sandbox.port}`);
    await ok(url, { action: "register" });
    await ok(`${sandbox.origin}/`, { action: "register" });
  });

  it("answers 404 JSON on other paths and 405 on other methods", async () => {
    const missing = await fetch(`${sandbox.origin}/api`, { method: "POST", body: "{}" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ success: false, code: "not_found" });
    const get = await fetch(url);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(await get.json()).toMatchObject({ success: false, code: "invalid_request" });
  });

  it("answers malformed JSON and non-object bodies with HTTP 400 invalid_request", async () => {
    for (const body of ["{not json", "", "[1,2]", "42", "null", '"register"']) {
      const response = await fetch(url, { method: "POST", body });
      expect(response.status, body).toBe(400);
      expect(await response.json()).toMatchObject({ success: false, code: "invalid_request" });
    }
  });

  it("refuses a body over 64 KiB with 413 and registers nothing", async () => {
    const before = sandbox.stats().calls.register ?? 0;
    const response = await fetch(url, {
      method: "POST",
      body: JSON.stringify({ action: "register", name: "x".repeat(70_000) }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ success: false, code: "invalid_request" });
    expect(sandbox.stats().calls.register ?? 0).toBe(before);
  });

  it("refuses an unknown or missing action", async () => {
    await refused(url, { action: "transfer_everything" }, "unknown_action");
    await refused(url, { action: 7 }, "invalid_request");
    await refused(url, { api_key: "lf_x" }, "invalid_request");
  });
});

describe("register, whoami, get_balance", () => {
  it("issues an lf_ key (32 random bytes, base64url) and a recovery code", async () => {
    const first = await registerOperator(url, "Alice");
    const second = await registerOperator(url);
    expect(first.apiKey).toMatch(API_KEY_PATTERN);
    expect(first.apiKey).toMatch(/^lf_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.apiKey.slice(3), "base64url")).toHaveLength(32);
    expect(first.recoveryCode.length).toBeGreaterThan(20);
    expect(first.apiKey).not.toBe(second.apiKey);
    expect(second.operatorId).not.toBe(first.operatorId);
  });

  it("whoami describes an operator and an agent; get_balance starts at 0", async () => {
    const operator = await registerOperator(url, "Alice");
    expect(await ok(url, { action: "whoami", api_key: operator.apiKey })).toEqual({
      success: true,
      type: "operator",
      id: operator.operatorId,
      name: "Alice",
      balance_sats: 0,
      agent_count: 0,
    });
    const defaultName = await registerOperator(url);
    expect(await ok(url, { action: "whoami", api_key: defaultName.apiKey })).toMatchObject({
      name: "AI Agent Operator",
    });
    const agent = await createAgent(url, operator.apiKey, { budget_limit_sats: 500 });
    expect(await ok(url, { action: "whoami", api_key: agent.apiKey })).toEqual({
      success: true,
      type: "agent",
      id: agent.agentId,
      name: "bot",
      balance_sats: 0,
      operator_id: operator.operatorId,
      budget_limit_sats: 500,
    });
    expect(await ok(url, { action: "get_balance", api_key: agent.apiKey })).toEqual({
      success: true,
      balance_sats: 0,
    });
  });

  it("refuses an unknown key with invalid_api_key", async () => {
    await refused(url, { action: "whoami", api_key: "lf_nope" }, "invalid_api_key");
    await refused(
      url,
      { action: "get_balance", api_key: `lf_${"A".repeat(43)}` },
      "invalid_api_key",
    );
  });
});

describe("agents and balances", () => {
  it("creates and lists agents, operators only", async () => {
    const operator = await registerOperator(url);
    const agent = await createAgent(url, operator.apiKey);
    expect(agent.apiKey).toMatch(API_KEY_PATTERN);
    expect(await ok(url, { action: "list_agents", api_key: operator.apiKey })).toEqual({
      success: true,
      agents: [{ id: agent.agentId, name: "bot", balance_sats: 0, is_active: true }],
    });
    await refused(url, { action: "list_agents", api_key: agent.apiKey }, "forbidden");
    await refused(
      url,
      { action: "create_agent", api_key: agent.apiKey, name: "child" },
      "forbidden",
    );
    const other = await registerOperator(url);
    expect(await ok(url, { action: "list_agents", api_key: other.apiKey })).toEqual({
      success: true,
      agents: [],
    });
  });

  it("credits, funds and withdraws, refusing overdrafts", async () => {
    const operator = await registerOperator(url);
    const agent = await createAgent(url, operator.apiKey);
    expect(
      await ok(url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: 1000 }),
    ).toMatchObject({ balance_sats: 1000 });
    await refused(
      url,
      { action: "sandbox_credit", api_key: agent.apiKey, amount_sats: 5 },
      "forbidden",
    );
    expect(
      await ok(url, {
        action: "fund_agent",
        api_key: operator.apiKey,
        agent_id: agent.agentId,
        amount_sats: 300,
      }),
    ).toEqual({ success: true, operator_balance: 700, agent_balance: 300, transferred: 300 });
    await refused(
      url,
      { action: "fund_agent", api_key: operator.apiKey, agent_id: agent.agentId, amount_sats: 701 },
      "insufficient_balance",
    );
    const withdrawal = await ok(url, {
      action: "withdraw",
      api_key: agent.apiKey,
      amount_sats: 120,
    });
    expect(withdrawal).toMatchObject({ amount_sats: 120, fee_sats: 0, new_balance: 180 });
    expect(text(withdrawal, "payment_hash")).toMatch(/^[0-9a-f]{64}$/);
    await refused(
      url,
      { action: "withdraw", api_key: agent.apiKey, amount_sats: 181 },
      "insufficient_balance",
    );
    expect(await ok(url, { action: "get_balance", api_key: agent.apiKey })).toMatchObject({
      balance_sats: 180,
    });
    expect(await ok(url, { action: "get_balance", api_key: operator.apiKey })).toMatchObject({
      balance_sats: 700,
    });
  });

  it("withdraws the amount of a BOLT11 invoice", async () => {
    const operator = await registerOperator(url);
    await ok(url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: 10_000 });
    const invoice = `lnbc2500u1${"p".repeat(60)}`; // 2500 µBTC = 250 000 sats: too much
    await refused(
      url,
      { action: "withdraw", api_key: operator.apiKey, invoice },
      "insufficient_balance",
    );
    const small = `lnbc50u1${"q".repeat(60)}`; // 50 µBTC = 5000 sats
    expect(
      await ok(url, { action: "withdraw", api_key: operator.apiKey, invoice: small }),
    ).toMatchObject({ amount_sats: 5000, new_balance: 5000 });
    const amountless = `lnbc1${"q".repeat(60)}`;
    await refused(
      url,
      { action: "withdraw", api_key: operator.apiKey, invoice: amountless },
      "invalid_request",
    );
    expect(
      await ok(url, {
        action: "withdraw",
        api_key: operator.apiKey,
        invoice: amountless,
        amount_sats: 10,
      }),
    ).toMatchObject({ amount_sats: 10, new_balance: 4990 });
    await refused(
      url,
      { action: "withdraw", api_key: operator.apiKey, invoice: "not-an-invoice" },
      "invalid_request",
    );
  });

  it("funds an agent only up to its budget limit, and only its own agents", async () => {
    const operator = await registerOperator(url);
    await ok(url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: 1000 });
    const agent = await createAgent(url, operator.apiKey, { budget_limit_sats: 100 });
    const fund = (amount: number, agentId = agent.agentId) => ({
      action: "fund_agent",
      api_key: operator.apiKey,
      agent_id: agentId,
      amount_sats: amount,
    });
    await ok(url, fund(100));
    await refused(url, fund(1), "invalid_request");
    const stranger = await registerOperator(url);
    const foreign = await createAgent(url, stranger.apiKey);
    await refused(url, fund(1, foreign.agentId), "not_found");
    await refused(url, fund(1, 2 ** 31 - 1), "not_found");
    expect(await ok(url, { action: "get_balance", api_key: operator.apiKey })).toMatchObject({
      balance_sats: 900,
    });
  });
});

describe("input validation changes nothing", () => {
  it("refuses missing, mistyped, over-long and out-of-range fields with invalid_request", async () => {
    const operator = await registerOperator(url);
    await ok(url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: 1000 });
    const agent = await createAgent(url, operator.apiKey);
    const before = await observe(url, operator.apiKey);
    const rotationsBefore = sandbox.stats().rotations;
    const key = operator.apiKey;
    const bad: Record<string, unknown>[] = [
      { action: "whoami" },
      { action: "whoami", api_key: 12 },
      { action: "whoami", api_key: "" },
      { action: "whoami", api_key: "k".repeat(257) },
      { action: "register", name: "n".repeat(101) },
      { action: "register", name: 5 },
      { action: "register", email: "not-an-email" },
      { action: "register", email: `${"e".repeat(250)}@x.io` },
      { action: "create_agent", api_key: key },
      { action: "create_agent", api_key: key, name: "   " },
      { action: "create_agent", api_key: key, name: "b", budget_limit_sats: -1 },
      { action: "create_agent", api_key: key, name: "b", description: "d".repeat(501) },
      { action: "fund_agent", api_key: key, agent_id: agent.agentId },
      { action: "fund_agent", api_key: key, agent_id: agent.agentId, amount_sats: 0 },
      { action: "fund_agent", api_key: key, agent_id: agent.agentId, amount_sats: -5 },
      { action: "fund_agent", api_key: key, agent_id: agent.agentId, amount_sats: 1.5 },
      { action: "fund_agent", api_key: key, agent_id: agent.agentId, amount_sats: "10" },
      { action: "fund_agent", api_key: key, agent_id: agent.agentId, amount_sats: 2 ** 60 },
      { action: "fund_agent", api_key: key, agent_id: 2 ** 31, amount_sats: 1 },
      { action: "fund_agent", api_key: key, agent_id: 0, amount_sats: 1 },
      { action: "regenerate_agent_key", api_key: key },
      { action: "regenerate_agent_key", api_key: key, agent_id: "1" },
      { action: "regenerate_operator_key", api_key: key, request_id: "" },
      { action: "regenerate_operator_key", api_key: key, request_id: "r".repeat(129) },
      { action: "regenerate_operator_key", api_key: key, request_id: 7 },
      { action: "regenerate_operator_key", api_key: [key] },
      { action: "recover" },
      { action: "recover", recovery_code: operator.recoveryCode, request_id: "" },
      { action: "withdraw", api_key: key },
      { action: "withdraw", api_key: key, invoice: "i".repeat(2001) },
      { action: "withdraw", api_key: key, amount_sats: 0 },
      { action: "sandbox_credit", api_key: key, amount_sats: 0 },
      { action: "sandbox_credit", api_key: key, amount_sats: 1e300 },
      { action: "sandbox_advance_clock", seconds: 0 },
      { action: "sandbox_advance_clock", seconds: "60" },
    ];
    for (const body of bad) {
      const reply = await refused(url, body, "invalid_request");
      expect(reply.error, JSON.stringify(body).slice(0, 80)).toMatch(/\w/);
    }
    expect(await observe(url, operator.apiKey)).toEqual(before);
    expect(sandbox.stats().rotations).toBe(rotationsBefore);
  });

  it("names the offending field in the error", async () => {
    const reply = await refused(
      url,
      { action: "fund_agent", api_key: "lf_x", agent_id: 1, amount_sats: -1 },
      "invalid_request",
    );
    expect(reply.error).toContain("amount_sats");
  });
});

describe("sandbox_advance_clock", () => {
  it("is forbidden on a sandbox without a test clock", async () => {
    const real = await startSandbox();
    try {
      await refused(real.url, { action: "sandbox_advance_clock", seconds: 60 }, "forbidden");
    } finally {
      await real.close();
    }
  });

  it("moves the test clock, and testClock: true gives one", async () => {
    const withTestClock = await startSandbox({ testClock: true });
    try {
      const before = withTestClock.clock.now();
      const reply = await ok(withTestClock.url, { action: "sandbox_advance_clock", seconds: 90 });
      expect(withTestClock.clock.now()).toBe(before + 90_000);
      expect(reply.now).toBe(new Date(before + 90_000).toISOString());
    } finally {
      await withTestClock.close();
    }
  });

  it("moves a passed-in clock that cannot advance itself by an offset", async () => {
    const fixed = { now: () => Date.UTC(2030, 0, 1) };
    const withClock = await startSandbox({ clock: fixed });
    try {
      await ok(withClock.url, { action: "sandbox_advance_clock", seconds: 60 });
      expect(withClock.clock.now()).toBe(Date.UTC(2030, 0, 1) + 60_000);
    } finally {
      await withClock.close();
    }
  });
});

describe("rate limiting", () => {
  it("is off by default and answers 429 rate_limited when configured", async () => {
    const limited = await startOnTestClock({ rateLimit: { maxRequests: 2, windowMs: 1000 } });
    try {
      await ok(limited.url, { action: "register" });
      await ok(limited.url, { action: "register" });
      await refused(limited.url, { action: "register" }, "rate_limited", 429);
      limited.clock.advance(1000);
      await ok(limited.url, { action: "register" });
    } finally {
      await limited.sandbox.close();
    }
    for (let index = 0; index < 20; index += 1) await ok(url, { action: "register" });
  });
});

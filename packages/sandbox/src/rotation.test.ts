import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TestClock } from "./clock.js";
import {
  call,
  createAgent,
  MINUTE_MS,
  ok,
  refused,
  registerOperator,
  startOnTestClock,
  text,
} from "./conformance.test-helper.js";
import { API_KEY_PATTERN } from "./secrets.js";
import type { RunningSandbox } from "./server.js";

let sandbox: RunningSandbox;
let clock: TestClock;
let url: string;

beforeEach(async () => {
  ({ sandbox, clock, url } = await startOnTestClock());
});
afterEach(() => sandbox.close());

const SECOND_MS = 1000;

async function fundedOperator(sats = 10_000) {
  const operator = await registerOperator(url);
  await ok(url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: sats });
  return operator;
}

/** A new agent of the operator's, funded with `sats` from the operator's balance. */
async function fundedAgent(operatorKey: string, sats: number) {
  const agent = await createAgent(url, operatorKey);
  await ok(url, {
    action: "fund_agent",
    api_key: operatorKey,
    agent_id: agent.agentId,
    amount_sats: sats,
  });
  return agent;
}

describe("regenerate_operator_key", () => {
  it("issues a new key and kills the old one at once", async () => {
    const operator = await registerOperator(url);
    const reply = await ok(url, { action: "regenerate_operator_key", api_key: operator.apiKey });
    const newKey = text(reply, "api_key");
    expect(newKey).toMatch(API_KEY_PATTERN);
    expect(newKey).not.toBe(operator.apiKey);
    expect(text(reply, "message")).toMatch(/60 minutes/);
    expect(reply.cooldown_until).toBe(new Date(clock.now() + 60 * MINUTE_MS).toISOString());
    expect(reply).not.toHaveProperty("request_id");
    await refused(url, { action: "whoami", api_key: operator.apiKey }, "invalid_api_key");
    await refused(
      url,
      { action: "regenerate_operator_key", api_key: operator.apiKey },
      "invalid_api_key",
    );
    expect(await ok(url, { action: "whoami", api_key: newKey })).toMatchObject({
      type: "operator",
      id: operator.operatorId,
    });
    expect(sandbox.stats()).toMatchObject({
      rotations: 1,
      rotationsByAction: { regenerate_operator_key: 1 },
      calls: { regenerate_operator_key: 2 },
    });
  });

  it("blocks operator withdrawals for exactly 60 minutes: 59:59 refused, 60:00 allowed", async () => {
    const operator = await fundedOperator();
    await ok(url, { action: "withdraw", api_key: operator.apiKey, amount_sats: 1 });
    const rotatedAt = clock.now();
    const newKey = text(
      await ok(url, { action: "regenerate_operator_key", api_key: operator.apiKey }),
      "api_key",
    );
    const withdraw = { action: "withdraw", api_key: newKey, amount_sats: 10 };
    const atStart = await refused(url, withdraw, "cooldown_active");
    expect(atStart).toMatchObject({
      cooldown_until: new Date(rotatedAt + 60 * MINUTE_MS).toISOString(),
      seconds_remaining: 3600,
    });
    clock.set(rotatedAt + 59 * MINUTE_MS + 59 * SECOND_MS);
    expect(await refused(url, withdraw, "cooldown_active")).toMatchObject({ seconds_remaining: 1 });
    clock.advance(999);
    expect(await refused(url, withdraw, "cooldown_active")).toMatchObject({ seconds_remaining: 1 });
    clock.set(rotatedAt + 60 * MINUTE_MS);
    expect(await ok(url, withdraw)).toMatchObject({ amount_sats: 10, new_balance: 9989 });
  });

  it("keeps other actions working during the cooldown", async () => {
    const operator = await fundedOperator();
    const newKey = text(
      await ok(url, { action: "regenerate_operator_key", api_key: operator.apiKey }),
      "api_key",
    );
    const agent = await createAgent(url, newKey);
    await ok(url, {
      action: "fund_agent",
      api_key: newKey,
      agent_id: agent.agentId,
      amount_sats: 5,
    });
    await ok(url, { action: "withdraw", api_key: agent.apiKey, amount_sats: 5 });
  });

  it("with an agent key rotates that agent, with a 30 minute cooldown: 29:59 refused, 30:00 allowed", async () => {
    const operator = await fundedOperator();
    const agent = await fundedAgent(operator.apiKey, 100);
    const rotatedAt = clock.now();
    const reply = await ok(url, { action: "regenerate_operator_key", api_key: agent.apiKey });
    expect(text(reply, "message")).toMatch(/30 minutes/);
    expect(reply.cooldown_until).toBe(new Date(rotatedAt + 30 * MINUTE_MS).toISOString());
    const newAgentKey = text(reply, "api_key");
    await refused(url, { action: "whoami", api_key: agent.apiKey }, "invalid_api_key");
    expect(await ok(url, { action: "whoami", api_key: newAgentKey })).toMatchObject({
      type: "agent",
      id: agent.agentId,
    });
    // The operator was not rotated: its key still works and it can still withdraw.
    await ok(url, { action: "withdraw", api_key: operator.apiKey, amount_sats: 1 });
    const withdraw = { action: "withdraw", api_key: newAgentKey, amount_sats: 10 };
    clock.set(rotatedAt + 29 * MINUTE_MS + 59 * SECOND_MS);
    expect(await refused(url, withdraw, "cooldown_active")).toMatchObject({ seconds_remaining: 1 });
    clock.set(rotatedAt + 30 * MINUTE_MS);
    await ok(url, withdraw);
  });
});

describe("regenerate_agent_key", () => {
  it("rotates one of the operator's agents with a 30 minute cooldown", async () => {
    const operator = await fundedOperator();
    const agent = await fundedAgent(operator.apiKey, 100);
    const rotatedAt = clock.now();
    const reply = await ok(url, {
      action: "regenerate_agent_key",
      api_key: operator.apiKey,
      agent_id: agent.agentId,
    });
    const newAgentKey = text(reply, "api_key");
    expect(reply.cooldown_until).toBe(new Date(rotatedAt + 30 * MINUTE_MS).toISOString());
    await refused(url, { action: "whoami", api_key: agent.apiKey }, "invalid_api_key");
    await ok(url, { action: "whoami", api_key: operator.apiKey });
    const withdraw = { action: "withdraw", api_key: newAgentKey, amount_sats: 10 };
    clock.set(rotatedAt + 29 * MINUTE_MS + 59 * SECOND_MS);
    await refused(url, withdraw, "cooldown_active");
    clock.set(rotatedAt + 30 * MINUTE_MS);
    await ok(url, withdraw);
  });

  it("is forbidden to agents and not_found for foreign or missing agents", async () => {
    const operator = await registerOperator(url);
    const agent = await createAgent(url, operator.apiKey);
    const stranger = await registerOperator(url);
    const foreign = await createAgent(url, stranger.apiKey);
    await refused(
      url,
      { action: "regenerate_agent_key", api_key: agent.apiKey, agent_id: agent.agentId },
      "forbidden",
    );
    const foreignReply = await refused(
      url,
      { action: "regenerate_agent_key", api_key: operator.apiKey, agent_id: foreign.agentId },
      "not_found",
    );
    const missingReply = await refused(
      url,
      { action: "regenerate_agent_key", api_key: operator.apiKey, agent_id: 999_999 },
      "not_found",
    );
    expect(foreignReply.error).toBe(missingReply.error);
    await ok(url, { action: "whoami", api_key: foreign.apiKey });
    await ok(url, { action: "whoami", api_key: agent.apiKey });
    expect(sandbox.stats().rotations).toBe(0);
  });
});

describe("recover", () => {
  it("issues a new operator key from the recovery code and starts the 60 minute cooldown", async () => {
    const operator = await fundedOperator();
    const recoveredAt = clock.now();
    const reply = await ok(url, { action: "recover", recovery_code: operator.recoveryCode });
    expect(reply.operator_id).toBe(operator.operatorId);
    expect(reply.cooldown_until).toBe(new Date(recoveredAt + 60 * MINUTE_MS).toISOString());
    const newKey = text(reply, "api_key");
    await refused(url, { action: "whoami", api_key: operator.apiKey }, "invalid_api_key");
    const withdraw = { action: "withdraw", api_key: newKey, amount_sats: 1 };
    clock.set(recoveredAt + 59 * MINUTE_MS + 59 * SECOND_MS);
    await refused(url, withdraw, "cooldown_active");
    clock.set(recoveredAt + 60 * MINUTE_MS);
    await ok(url, withdraw);
    // The recovery code stays the way back in.
    const again = await ok(url, { action: "recover", recovery_code: operator.recoveryCode });
    expect(text(again, "api_key")).not.toBe(newKey);
  });

  it("refuses an unknown recovery code", async () => {
    await refused(url, { action: "recover", recovery_code: "lfr_nope" }, "invalid_api_key");
  });
});

describe("request_id replay", () => {
  it("replays regenerate_operator_key for the old key without rotating again", async () => {
    const operator = await registerOperator(url);
    const request = {
      action: "regenerate_operator_key",
      api_key: operator.apiKey,
      request_id: "rot-1",
    };
    const first = await ok(url, request);
    expect(first.request_id).toBe("rot-1");
    clock.advance(23 * 60 * MINUTE_MS);
    const second = await ok(url, request);
    expect(second).toEqual(first);
    expect(sandbox.stats().rotations).toBe(1);
    await ok(url, { action: "whoami", api_key: text(first, "api_key") });
  });

  it("replays regenerate_agent_key and recover too", async () => {
    const operator = await registerOperator(url);
    const agent = await createAgent(url, operator.apiKey);
    const rotateAgent = {
      action: "regenerate_agent_key",
      api_key: operator.apiKey,
      agent_id: agent.agentId,
      request_id: "agent-rot",
    };
    const agentFirst = await ok(url, rotateAgent);
    expect(await ok(url, rotateAgent)).toEqual(agentFirst);
    expect(agentFirst.request_id).toBe("agent-rot");
    await refused(
      url,
      { ...rotateAgent, agent_id: (await createAgent(url, operator.apiKey)).agentId },
      "invalid_request",
    );
    const recover = { action: "recover", recovery_code: operator.recoveryCode, request_id: "rec" };
    const recoverFirst = await ok(url, recover);
    expect(await ok(url, recover)).toEqual(recoverFirst);
    expect(recoverFirst.request_id).toBe("rec");
    expect(sandbox.stats().rotationsByAction).toEqual({ regenerate_agent_key: 1, recover: 1 });
    await ok(url, { action: "whoami", api_key: text(agentFirst, "api_key") });
    await ok(url, { action: "whoami", api_key: text(recoverFirst, "api_key") });
  });

  it("is not honoured for another credential or after 24 hours", async () => {
    const operator = await registerOperator(url);
    const first = await ok(url, {
      action: "regenerate_operator_key",
      api_key: operator.apiKey,
      request_id: "same",
    });
    const currentKey = text(first, "api_key");
    // The same request_id from the new key is a new request: it rotates.
    const fromNewKey = await ok(url, {
      action: "regenerate_operator_key",
      api_key: currentKey,
      request_id: "same",
    });
    expect(fromNewKey.api_key).not.toBe(currentKey);
    expect(sandbox.stats().rotations).toBe(2);

    const other = await registerOperator(url);
    const request = { action: "regenerate_operator_key", api_key: other.apiKey, request_id: "day" };
    await ok(url, request);
    clock.advance(24 * 60 * MINUTE_MS);
    await refused(url, request, "invalid_api_key");
    expect(sandbox.stats().rotations).toBe(3);
  });

  it("is off with requestIdSupport: false: nothing echoed, nothing replayed", async () => {
    const plain = await startOnTestClock({ requestIdSupport: false });
    try {
      const operator = await registerOperator(plain.url);
      const request = {
        action: "regenerate_operator_key",
        api_key: operator.apiKey,
        request_id: "rot-1",
      };
      const first = await ok(plain.url, request);
      expect(first).not.toHaveProperty("request_id");
      await refused(plain.url, request, "invalid_api_key");
      const recover = { action: "recover", recovery_code: operator.recoveryCode, request_id: "r" };
      const recovered = await ok(plain.url, recover);
      expect(recovered).not.toHaveProperty("request_id");
      expect((await ok(plain.url, recover)).api_key).not.toBe(recovered.api_key);
    } finally {
      await plain.sandbox.close();
    }
  });
});

describe("concurrency", () => {
  it("100 parallel rotations with one old key yield exactly one new key", async () => {
    const operator = await registerOperator(url);
    const replies = await Promise.all(
      Array.from({ length: 100 }, () =>
        call(url, { action: "regenerate_operator_key", api_key: operator.apiKey }),
      ),
    );
    const winners = replies.filter((reply) => reply.body.success === true);
    const losers = replies.filter((reply) => reply.body.code === "invalid_api_key");
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(99);
    expect(sandbox.stats().rotations).toBe(1);
    await ok(url, { action: "whoami", api_key: text(winners[0]?.body ?? {}, "api_key") });
  });

  it("100 parallel replays of one request_id yield one rotation and the same key", async () => {
    const operator = await registerOperator(url);
    const replies = await Promise.all(
      Array.from({ length: 100 }, () =>
        ok(url, { action: "regenerate_operator_key", api_key: operator.apiKey, request_id: "x" }),
      ),
    );
    expect(new Set(replies.map((reply) => reply.api_key)).size).toBe(1);
    expect(sandbox.stats().rotations).toBe(1);
  });
});

import { utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createRekey, openCredentialStore } from "@rekey/core";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, makeToken, startHarness } from "./harness.test-helper.js";

// Who may do what: per-token principals, the force and metrics scopes, the limits on routes
// that reach the faucet, readiness that is about serving.

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function problemCode(response: Response): Promise<string> {
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return ((await response.json()) as { code: string }).code;
}

/** A harness whose operator has one agent, with its key in the store. */
async function withAgent(options: Parameters<typeof startHarness>[0] = {}) {
  const started = await startHarness(options);
  harness = started;
  const { agentId } = await started.rekey.createAgent({ name: "worker" });
  return { harness: started, agentId };
}

describe("per-token principals", () => {
  const agentReader = makeToken("agent-reader", ["read_key", "status"], ["agent:1"]);
  const agentRotator = makeToken("agent-rotator", ["rotate"], ["agent:1"]);

  it("a read_key token for one agent cannot read the operator's key nor another agent's", async () => {
    const { harness: h, agentId } = await withAgent({ extraTokens: [agentReader] });
    expect(agentId).toBe(1);
    const operatorKey = await h.call("GET", "/v1/keys/current", { token: agentReader });
    expect(operatorKey.status).toBe(403);
    expect(await problemCode(operatorKey)).toBe("FORBIDDEN");
    const otherAgent = await h.call("GET", "/v1/keys/current?agent_id=2", { token: agentReader });
    expect(otherAgent.status).toBe(403);

    const own = await h.call("GET", "/v1/keys/current?agent_id=1", { token: agentReader });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ principal: { kind: "agent", agent_id: 1 } });

    expect((await h.call("GET", "/v1/status", { token: agentReader })).status).toBe(403);
    expect((await h.call("GET", "/v1/status?agent_id=1", { token: agentReader })).status).toBe(200);
    // The list of every agent is the operator's.
    expect((await h.call("GET", "/v1/agents", { token: agentReader })).status).toBe(403);
  });

  it("a rotate token for one agent cannot rotate the operator nor another agent", async () => {
    const { harness: h } = await withAgent({ extraTokens: [agentRotator] });
    for (const body of [{}, { agent_id: 2 }, { agent_id: 2, dry_run: true }]) {
      const refused = await h.call("POST", "/v1/rotate", { body, token: agentRotator });
      expect(refused.status).toBe(403);
      expect(await problemCode(refused)).toBe("FORBIDDEN");
    }
    expect(h.sandbox.stats().rotations).toBe(0);
    const own = await h.call("POST", "/v1/rotate", { body: { agent_id: 1 }, token: agentRotator });
    expect(own.status).toBe(200);
    expect(h.sandbox.stats().rotations).toBe(1);
  });

  it("refuses a principal list it cannot read, at start-up", async () => {
    const { parseTokenConfig } = await import("./tokens.js");
    const entry = { name: "x", sha256: "a".repeat(64), scopes: ["status"] };
    for (const principals of [[], ["agent:0"], ["agents"], ["agent:7 "], ["operator", 3]]) {
      expect(() => parseTokenConfig(JSON.stringify([{ ...entry, principals }]))).toThrow(
        /principals/,
      );
    }
    expect(
      parseTokenConfig(JSON.stringify([{ ...entry, principals: ["operator", "agent:*"] }])),
    ).toHaveLength(1);
  });
});

describe("the force scope", () => {
  it("a rotate token without it cannot force a rotation inside a cooldown", async () => {
    harness = await startHarness();
    const h = harness;
    expect((await h.call("POST", "/v1/rotate", { body: {}, token: h.tokens.release })).status).toBe(
      200,
    );
    const forced = await h.call("POST", "/v1/rotate", {
      body: { force: true },
      token: h.tokens.release,
    });
    expect(forced.status).toBe(403);
    expect(forced.headers.get("www-authenticate")).toContain('scope="force"');
    expect(h.sandbox.stats().rotations).toBe(1);
    // With the scope it may.
    expect((await h.call("POST", "/v1/rotate", { body: { force: true } })).status).toBe(200);
    expect(h.sandbox.stats().rotations).toBe(2);
  });
});

describe("Idempotency-Key records", () => {
  it("keeps at most the configured number per token, the newest", async () => {
    harness = await startHarness({ app: { idempotencyRecordsPerToken: 3 } });
    const h = harness;
    for (let index = 0; index < 5; index++) {
      h.clock?.advance(1000);
      const response = await h.call("POST", "/v1/rotate", {
        body: { force: true },
        headers: { "idempotency-key": `release-${index}` },
      });
      expect(response.status).toBe(200);
    }
    const records = (await h.store.read()).data.idempotency;
    expect(Object.keys(records)).toHaveLength(3);
    const replay = await h.call("POST", "/v1/rotate", {
      body: { force: true },
      headers: { "idempotency-key": "release-4" },
    });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
  });
});

describe("routes that reach the faucet", () => {
  it("/readyz asks the faucet at most once per interval, however often it is called", async () => {
    harness = await startHarness({ app: { readinessMaxAgeMs: 5000 } });
    const h = harness;
    const whoamiCalls = () => h.sandbox.stats().calls.whoami ?? 0;
    const before = whoamiCalls();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => h.call("GET", "/readyz", { token: null })),
    );
    for (const answer of answers) expect(answer.status).toBe(200);
    for (let poll = 0; poll < 10; poll++) await h.call("GET", "/readyz", { token: null });
    expect(whoamiCalls() - before).toBe(1);
    h.clock?.advance(5000);
    await h.call("GET", "/readyz", { token: null });
    expect(whoamiCalls() - before).toBe(2);
  });

  it("/v1/agents is rate limited per token", async () => {
    harness = await startHarness({ app: { faucetReadLimit: { capacity: 3, windowMs: 60_000 } } });
    const h = harness;
    const statuses: number[] = [];
    for (let call = 0; call < 5; call++) {
      statuses.push((await h.call("GET", "/v1/agents", { token: h.tokens.status })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // Another token has its own budget.
    expect((await h.call("GET", "/v1/agents")).status).toBe(200);
  });
});

describe("/metrics", () => {
  it("needs a token with the metrics scope once one is configured", async () => {
    const scraper = makeToken("scraper", ["metrics"]);
    harness = await startHarness({ extraTokens: [scraper] });
    const h = harness;
    expect((await h.call("GET", "/metrics", { token: null })).status).toBe(401);
    expect((await h.call("GET", "/metrics", { token: h.tokens.status })).status).toBe(403);
    const scraped = await h.call("GET", "/metrics", { token: scraper });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain("rekey_http_rotations_total");
  });

  it("never labels a series with an agent id, however many agents are read", async () => {
    const { harness: h, agentId } = await withAgent();
    await h.call("POST", "/v1/rotate", { body: { agent_id: agentId } });
    for (let id = 1; id <= 30; id++) await h.call("GET", `/v1/status?agent_id=${id}`);
    const text = await (await h.call("GET", "/metrics", { token: null })).text();
    expect(text).not.toMatch(/principal="agent \d+"/);
    expect(text).toContain("rekey_agents_in_cooldown 1");
    expect(text).toMatch(/rekey_cooldown_remaining_seconds\{principal="agent"\} 1800/);
    const series = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    expect(series.length).toBeLessThan(40);
  });
});

describe("/readyz", () => {
  it("stays ready with harmless leftovers, which /metrics reports", async () => {
    harness = await startHarness();
    const h = harness;
    // A temp file from a crashed writer, older than the store's grace period.
    const leftover = join(h.dir, ".credentials.json.deadbeef.tmp");
    await writeFile(leftover, "{}", { mode: 0o600 });
    h.clock?.advance(10 * 60_000);
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(leftover, old, old);
    expect((await h.rekey.health()).store.problems.length).toBeGreaterThan(0);

    const readyz = await h.call("GET", "/readyz", { token: null });
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toMatchObject({ status: "ready", store: { ok: true } });
    const text = await (await h.call("GET", "/metrics", { token: null })).text();
    expect(text).toMatch(/^rekey_store_problems [1-9]/m);
    expect(text).toContain("rekey_store_readable 1");
  });

  it("is not ready when the store cannot be read", async () => {
    harness = await startHarness();
    const h = harness;
    await writeFile(join(h.dir, "credentials.json"), "{ torn", { mode: 0o600 });
    // A fresh process on the broken store, so nothing is served from memory.
    const store = await openCredentialStore({ spec: h.dir, env: {} });
    const rekey = createRekey({ store, surface: "http", env: {}, clock: h.sandbox.clock });
    try {
      const health = await rekey.health();
      expect(health.store.readable).toBe(false);
    } finally {
      await rekey.close();
      await store.close();
    }
    const readyz = await h.call("GET", "/readyz", { token: null });
    expect(readyz.status).toBe(503);
  });
});

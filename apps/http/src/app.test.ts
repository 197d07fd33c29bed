import { createRekey, fingerprint, openCredentialStore } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Harness, startHarness } from "./harness.test-helper.js";
import { createLogger } from "./logger.js";

let harness: Harness;

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function expectProblem(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = await json(response);
  expect(body).toMatchObject({ status, code });
  expect(typeof body.type).toBe("string");
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}

describe("createHttpApp", () => {
  beforeEach(async () => {
    harness = await startHarness();
  });
  afterEach(async () => {
    await harness.close();
  });

  describe("unauthenticated endpoints", () => {
    it("answers /healthz, /readyz and /metrics without a token", async () => {
      const healthz = await harness.call("GET", "/healthz", { token: null });
      expect(healthz.status).toBe(200);
      expect(await healthz.json()).toEqual({ status: "ok" });

      const readyz = await harness.call("GET", "/readyz", { token: null });
      expect(readyz.status).toBe(200);
      expect(await readyz.json()).toEqual({
        status: "ready",
        store: { ok: true },
        upstream: { ok: true },
      });

      const metrics = await harness.call("GET", "/metrics", { token: null });
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      expect(await metrics.text()).toContain("# TYPE rekey_http_rotations_total counter");
    });

    it("reports not ready (503) when the faucet is unreachable", async () => {
      await harness.sandbox.close();
      const readyz = await harness.call("GET", "/readyz", { token: null });
      expect(readyz.status).toBe(503);
      expect(await readyz.json()).toMatchObject({ status: "not_ready", upstream: { ok: false } });
    });

    it("serves an OpenAPI 3.1 document built from the validating schemas", async () => {
      const response = await harness.call("GET", "/openapi.json", { token: null });
      expect(response.status).toBe(200);
      const document = (await response.json()) as {
        openapi: string;
        paths: Record<string, Record<string, { security?: unknown[] }>>;
        components: {
          schemas: Record<string, { additionalProperties?: unknown }>;
          securitySchemes: object;
        };
      };
      expect(document.openapi).toBe("3.1.0");
      expect(Object.keys(document.paths).sort()).toEqual([
        "/healthz",
        "/metrics",
        "/readyz",
        "/v1/agents",
        "/v1/events",
        "/v1/keys/current",
        "/v1/rotate",
        "/v1/status",
      ]);
      expect(document.paths["/v1/rotate"]?.post?.security).toEqual([{ bearerAuth: [] }]);
      expect(document.paths["/healthz"]?.get?.security).toEqual([]);
      expect(document.components.securitySchemes).toHaveProperty("bearerAuth");
      expect(document.components.schemas.RotateRequest?.additionalProperties).toBe(false);
    });
  });

  describe("bearer tokens and scopes", () => {
    it("refuses a missing or unknown token with 401 and WWW-Authenticate", async () => {
      for (const token of [null, "not-a-configured-token"]) {
        const response = await harness.call("GET", "/v1/status", { token });
        const body = await expectProblem(response, 401, "UNAUTHORIZED");
        expect(body.title).toBe("Authentication required");
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer /);
      }
      const basic = await harness.call("GET", "/v1/status", {
        token: null,
        headers: { authorization: `Basic ${btoa("user:pass")}` },
      });
      expect(basic.status).toBe(401);
    });

    it("refuses a token without the route's scope with 403", async () => {
      const rotate = await harness.call("POST", "/v1/rotate", {
        token: harness.tokens.status,
        body: {},
      });
      await expectProblem(rotate, 403, "FORBIDDEN");
      expect(rotate.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
      expect(harness.sandbox.stats().rotations).toBe(0);

      const key = await harness.call("GET", "/v1/keys/current", { token: harness.tokens.rotate });
      await expectProblem(key, 403, "FORBIDDEN");
      const status = await harness.call("GET", "/v1/status", { token: harness.tokens.reader });
      await expectProblem(status, 403, "FORBIDDEN");
    });
  });

  describe("GET /v1/status and /v1/agents", () => {
    it("shows the operator's fingerprint, key age and no cooldown", async () => {
      const response = await harness.call("GET", "/v1/status", { token: harness.tokens.status });
      expect(response.status).toBe(200);
      expect(response.headers.get("cache-control")).toBe("no-store");
      const body = await json(response);
      expect(body).toMatchObject({
        principal: { kind: "operator" },
        label: "operator",
        has_key: true,
        fingerprint: harness.operatorFingerprint,
        cooldown_remaining_seconds: 0,
      });
      expect(body.key_age_seconds).toBeGreaterThanOrEqual(0);
      expect(body).not.toHaveProperty("pending_rotation");
    });

    it("lists agents with what the store holds for them, and shows an agent's status", async () => {
      const created = await harness.rekey.createAgent({ name: "worker" });
      const agents = await harness.call("GET", "/v1/agents", { token: harness.tokens.status });
      expect(agents.status).toBe(200);
      expect(await agents.json()).toEqual({
        agents: [
          expect.objectContaining({
            agent_id: created.agentId,
            name: "worker",
            has_key: true,
            fingerprint: created.fingerprint,
            cooldown_remaining_seconds: 0,
          }),
        ],
      });
      const status = await harness.call("GET", `/v1/status?agent_id=${created.agentId}`, {
        token: harness.tokens.status,
      });
      expect(await status.json()).toMatchObject({
        principal: { kind: "agent", agent_id: created.agentId },
        fingerprint: created.fingerprint,
      });
    });

    it("rejects an agent_id that is not a positive whole number with 400", async () => {
      for (const agentId of ["abc", "0", "-3", "1.5", "99999999999", "7&agent_id=8"]) {
        const response = await harness.call("GET", `/v1/status?agent_id=${agentId}`, {
          token: harness.tokens.status,
        });
        await expectProblem(response, 400, "INVALID_INPUT");
      }
    });
  });

  describe("query parameters", () => {
    it("refuses a misspelled agent_id instead of answering for the active principal", async () => {
      // `?agentid=1` was dropped: the operator's status came back as if it were agent 1's.
      for (const [path, token] of [
        ["/v1/status?agentid=1", harness.tokens.status],
        ["/v1/status?agent_id=1&verbose=1", harness.tokens.status],
        ["/v1/keys/current?agentId=1", harness.tokens.reader],
      ] as const) {
        const response = await harness.call("GET", path, { token });
        const problem = await expectProblem(response, 400, "INVALID_INPUT");
        const name = /[?&](agentid|verbose|agentId)=/.exec(path)?.[1] ?? "";
        expect(problem.detail, path).toContain(`"${name}"`);
        expect(problem.hint, path).toMatch(/agent_id/);
        expect(problem.issues, path).toEqual([`${name}: not a query parameter of this route`]);
      }
    });

    it("refuses any query parameter on a route that takes none", async () => {
      for (const [path, token] of [
        ["/v1/agents?agent_id=1", harness.tokens.status],
        ["/v1/events?since=3", harness.tokens.status],
        ["/healthz?verbose", null],
        ["/readyz?full=1", null],
        ["/metrics?name=x", null],
        ["/openapi.json?format=yaml", null],
      ] as const) {
        const response = await harness.call("GET", path, { token });
        // An event stream answered 200 would stay open: close it.
        if (response.status === 200) await response.body?.cancel();
        const problem = await expectProblem(response, 400, "INVALID_INPUT");
        expect(problem.detail, path).toMatch(/takes no query parameters/);
        expect(problem.hint, path).toMatch(/Remove the query/);
      }
      // A bare `?` carries no parameter: nothing to refuse.
      expect((await harness.call("GET", "/healthz?", { token: null })).status).toBe(200);
      expect(
        (await harness.call("GET", "/v1/status?", { token: harness.tokens.status })).status,
      ).toBe(200);
    });
  });

  describe("X-Request-Id", () => {
    it("names every response's request: the caller's id when valid, else a fresh one", async () => {
      const echoed = await harness.call("GET", "/v1/status", {
        token: harness.tokens.status,
        headers: { "x-request-id": "trace-42=" },
      });
      expect(echoed.headers.get("x-request-id")).toBe("trace-42=");

      const refused = await harness.call("GET", "/v1/status", {
        token: null,
        headers: { "x-request-id": "forged id\u0007" },
      });
      const body = await expectProblem(refused, 401, "UNAUTHORIZED");
      const fresh = refused.headers.get("x-request-id");
      expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.request_id).toBe(fresh);

      for (const path of ["/healthz", "/metrics", "/openapi.json", "/nowhere"]) {
        const response = await harness.call("GET", path, { token: null });
        expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      }
      const agents = await harness.call("GET", "/v1/agents", { token: harness.tokens.status });
      expect(agents.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect(agents.headers.get("cache-control")).toBe("no-store");
    });
  });

  describe("POST /v1/rotate", () => {
    it("rotates the operator key and answers with fingerprints, never the key", async () => {
      const response = await harness.call("POST", "/v1/rotate", { body: {} });
      expect(response.status).toBe(200);
      const text = await response.text();
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body).toMatchObject({
        dry_run: false,
        principal: { kind: "operator" },
        old_fingerprint: harness.operatorFingerprint,
        verified: true,
        shared: false,
        cooldown_minutes: 60,
      });
      expect(body.fingerprint).not.toBe(harness.operatorFingerprint);
      expect(typeof body.request_id).toBe("string");
      expect(Date.parse(String(body.cooldown_until))).toBe(
        harness.sandbox.clock.now() + 60 * 60 * 1000,
      );
      expect(text).not.toMatch(/lf_[A-Za-z0-9_-]{20,}/);
      expect(harness.sandbox.stats().rotations).toBe(1);

      const current = await harness.rekey.keyProvider.current();
      expect(current.fingerprint).toBe(body.fingerprint);
      const status = await json(
        await harness.call("GET", "/v1/status", { token: harness.tokens.status }),
      );
      expect(status).toMatchObject({
        fingerprint: body.fingerprint,
        cooldown_remaining_seconds: 3600,
      });
    });

    it("shows its own rotation at once, and another process's within the status max age", async () => {
      const statusFingerprint = async () =>
        (await json(await harness.call("GET", "/v1/status", { token: harness.tokens.status })))
          .fingerprint;
      expect(await statusFingerprint()).toBe(harness.operatorFingerprint);
      const own = await json(await harness.call("POST", "/v1/rotate", { body: {} }));
      expect(await statusFingerprint()).toBe(own.fingerprint);

      // Another process sharing the store rotates (forced: the cooldown has just started).
      const shared = await openCredentialStore({ spec: harness.dir, env: {} });
      const otherProcess = createRekey({
        store: shared,
        surface: "library",
        env: {},
        clock: harness.sandbox.clock,
      });
      try {
        const theirs = await otherProcess.rotateKey({ force: true });
        await vi.waitFor(
          async () => expect(await statusFingerprint()).toBe(theirs.newFingerprint),
          {
            timeout: 2000,
            interval: 20,
          },
        );
      } finally {
        await otherProcess.close();
        await shared.close();
      }
    });

    it("refuses a second rotation inside the cooldown with 409 and Retry-After, unless forced", async () => {
      expect((await harness.call("POST", "/v1/rotate", { body: {} })).status).toBe(200);
      harness.clock?.advance(10 * 60 * 1000);
      const refused = await harness.call("POST", "/v1/rotate", { body: {} });
      const problem = await expectProblem(refused, 409, "COOLDOWN_ACTIVE");
      expect(refused.headers.get("retry-after")).toBe(String(50 * 60));
      expect(typeof problem.cooldown_until).toBe("string");
      expect(harness.sandbox.stats().rotations).toBe(1);

      const forced = await harness.call("POST", "/v1/rotate", { body: { force: true } });
      expect(forced.status).toBe(200);
      expect(harness.sandbox.stats().rotations).toBe(2);
    });

    it("plans without calling upstream on dry_run", async () => {
      const response = await harness.call("POST", "/v1/rotate", { body: { dry_run: true } });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        dry_run: true,
        principal: { kind: "operator" },
        fingerprint: harness.operatorFingerprint,
        action: "regenerate_operator_key",
        cooldown_minutes: 60,
        blocked_by_cooldown: false,
      });
      expect(harness.sandbox.stats().rotations).toBe(0);
    });

    it("rotates an agent's key without changing the operator's", async () => {
      const created = await harness.rekey.createAgent({ name: "worker" });
      const response = await harness.call("POST", "/v1/rotate", {
        body: { agent_id: created.agentId },
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        principal: { kind: "agent", agent_id: created.agentId },
        old_fingerprint: created.fingerprint,
        cooldown_minutes: 30,
      });
      const operator = await json(
        await harness.call("GET", "/v1/status", { token: harness.tokens.status }),
      );
      expect(operator.fingerprint).toBe(harness.operatorFingerprint);
    });

    it("answers 404 for an agent the operator does not have", async () => {
      const response = await harness.call("POST", "/v1/rotate", { body: { agent_id: 424242 } });
      await expectProblem(response, 404, "NOT_FOUND");
      expect(harness.sandbox.stats().rotations).toBe(0);
    });

    it("rejects unknown fields, wrong types, malformed JSON and other media types with 400/415", async () => {
      const unknown = await harness.call("POST", "/v1/rotate", { body: { forse: true } });
      const problem = await expectProblem(unknown, 400, "INVALID_INPUT");
      expect(JSON.stringify(problem.issues)).toContain("forse");

      // A key pasted as a field name is named in zod's issue: the problem body redacts it.
      const pasted = `lf_${"Zx9".repeat(10)}`;
      const keyAsField = await harness.call("POST", "/v1/rotate", { body: { [pasted]: true } });
      const keyProblem = await expectProblem(keyAsField, 400, "INVALID_INPUT");
      expect(JSON.stringify(keyProblem)).not.toContain(pasted);

      const wrongType = await harness.call("POST", "/v1/rotate", { body: { agent_id: "7" } });
      await expectProblem(wrongType, 400, "INVALID_INPUT");

      const malformed = await harness.call("POST", "/v1/rotate", { rawBody: '{"dry_run": tru' });
      await expectProblem(malformed, 400, "INVALID_INPUT");

      const text = await harness.call("POST", "/v1/rotate", {
        rawBody: "dry_run=true",
        headers: { "content-type": "text/plain" },
      });
      await expectProblem(text, 415, "INVALID_INPUT");
      expect(harness.sandbox.stats().rotations).toBe(0);
    });

    it("refuses a query string instead of rotating the active principal (agent_id goes in the body)", async () => {
      // GET /v1/status and /v1/keys/current take agent_id in the query: the same habit on
      // POST /v1/rotate was ignored, and the operator's key was rotated instead of agent 7's.
      const response = await harness.call("POST", "/v1/rotate?agent_id=7", { body: {} });
      const problem = await expectProblem(response, 400, "INVALID_INPUT");
      expect(JSON.stringify(problem)).toContain("agent_id");
      expect(harness.sandbox.stats().rotations).toBe(0);
    });

    it("rejects a body over 16 KiB with 413", async () => {
      const response = await harness.call("POST", "/v1/rotate", {
        rawBody: JSON.stringify({ dry_run: true, padding: "x".repeat(17 * 1024) }),
      });
      const problem = await expectProblem(response, 413, "INVALID_INPUT");
      expect(problem.title).toBe("Request body too large");
      expect(harness.sandbox.stats().rotations).toBe(0);
    });

    it("maps the faucet rejecting the stored key to 502, not to our own 401", async () => {
      // Another store holding the same key rotates it: the key this app holds is now dead.
      const other = await openCredentialStore({ spec: `${harness.dir}-other`, env: {} });
      const otherRekey = createRekey({
        store: other,
        surface: "library",
        baseUrl: harness.sandbox.url,
        env: {},
        clock: harness.sandbox.clock,
      });
      await otherRekey.login((await harness.rekey.keyProvider.current()).key);
      await otherRekey.rotateKey({});
      await otherRekey.close();
      await other.close();

      const response = await harness.call("POST", "/v1/rotate", { body: {} });
      const problem = await expectProblem(response, 502, "UNAUTHORIZED");
      expect(problem.title).toBe("The faucet rejected the stored key");
      expect(response.headers.get("www-authenticate")).toBeNull();
    });
  });

  describe("Idempotency-Key", () => {
    it("replays the first response for the same key and body, and refuses another body with 422", async () => {
      const headers = { "idempotency-key": "deploy-1" };
      const first = await harness.call("POST", "/v1/rotate", { body: {}, headers });
      expect(first.status).toBe(200);
      expect(first.headers.get("idempotent-replayed")).toBeNull();
      const firstBody = await first.json();

      harness.clock?.advance(60 * 1000);
      const again = await harness.call("POST", "/v1/rotate", { body: {}, headers });
      expect(again.status).toBe(200);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(await again.json()).toEqual(firstBody);
      expect(harness.sandbox.stats().rotations).toBe(1);

      const other = await harness.call("POST", "/v1/rotate", { body: { force: true }, headers });
      await expectProblem(other, 422, "IDEMPOTENCY_KEY_REUSED");
      expect(harness.sandbox.stats().rotations).toBe(1);
    });

    it("keeps each token's keys its own: another token cannot claim a key first", async () => {
      const headers = { "idempotency-key": "deploy-2026-12-02" };
      // Token B guesses token A's next key and sends it first, with a dry run and for real.
      const dryRun = await harness.call("POST", "/v1/rotate", {
        body: { dry_run: true },
        headers,
        token: harness.tokens.release,
      });
      expect(dryRun.status).toBe(200);
      const byOther = await harness.call("POST", "/v1/rotate", {
        body: {},
        headers,
        token: harness.tokens.release,
      });
      expect(byOther.status).toBe(200);
      harness.clock?.advance(61 * 60_000);
      // Token A's request is its own: it rotates, and is not refused as a reuse.
      const mine = await harness.call("POST", "/v1/rotate", { body: {}, headers });
      expect(mine.status).toBe(200);
      expect(mine.headers.get("idempotent-replayed")).toBeNull();
      expect(harness.sandbox.stats().rotations).toBe(2);
    });

    it("stores no record for a dry run, and at most the configured number per token", async () => {
      const slots = async () => Object.keys((await harness.store.read()).data.idempotency).length;
      for (let index = 0; index < 5; index++) {
        const response = await harness.call("POST", "/v1/rotate", {
          body: { dry_run: true },
          headers: { "idempotency-key": `plan-${index}` },
        });
        expect(response.status).toBe(200);
      }
      expect(await slots()).toBe(0);
    });

    it("rejects an Idempotency-Key that is not visible ASCII", async () => {
      const response = await harness.call("POST", "/v1/rotate", {
        body: {},
        headers: { "idempotency-key": "x".repeat(300) },
      });
      await expectProblem(response, 400, "INVALID_INPUT");
    });
  });

  it("exposes rotations by outcome, their duration and the cooldown per principal", async () => {
    await harness.call("POST", "/v1/rotate", { body: {} });
    await harness.call("POST", "/v1/rotate", { body: {} });
    await harness.call("POST", "/v1/rotate", { body: { dry_run: true } });
    const text = await (await harness.call("GET", "/metrics", { token: null })).text();
    expect(text).toContain('rekey_http_rotations_total{outcome="rotated"} 1');
    expect(text).toContain('rekey_http_rotations_total{outcome="COOLDOWN_ACTIVE"} 1');
    expect(text).toContain('rekey_http_rotations_total{outcome="dry_run"} 1');
    expect(text).toContain("rekey_http_rotation_duration_seconds_count 3");
    expect(text).toContain('rekey_cooldown_remaining_seconds{principal="operator"} 3600');
  });

  it("answers an unknown route with a 404 problem", async () => {
    await expectProblem(
      await harness.call("GET", "/v2/nothing", { token: null }),
      404,
      "NOT_FOUND",
    );
  });

  it("logs successful polls (status, probes, metrics) only at debug, failures at info", async () => {
    const requestLines = (logs: string[]) =>
      logs
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.msg === "request")
        .map((line) => [line.level, line.route, line.status]);
    const poll = async (target: Harness) => {
      expect((await target.call("GET", "/v1/status")).status).toBe(200);
      expect((await target.call("GET", "/healthz")).status).toBe(200);
      expect((await target.call("GET", "/metrics")).status).toBe(200);
      expect((await target.call("GET", "/v1/status", { token: "wrong-token" })).status).toBe(401);
      expect((await target.call("GET", "/v1/agents")).status).toBe(200);
    };
    await poll(harness);
    // pino levels: 20 debug, 30 info.
    expect(requestLines(harness.logs)).toEqual([
      [30, "/v1/status", 401],
      [30, "/v1/agents", 200],
    ]);

    const verbose = await startHarness({ logLevel: "debug" });
    try {
      await poll(verbose);
      expect(requestLines(verbose.logs)).toEqual([
        [20, "/v1/status", 200],
        [20, "/healthz", 200],
        [20, "/metrics", 200],
        [30, "/v1/status", 401],
        [30, "/v1/agents", 200],
      ]);
    } finally {
      await verbose.close();
    }
  });

  it("logs one line per request with the token's name, never the token or a key", async () => {
    await harness.call("POST", "/v1/rotate", { body: {} });
    const key = await json(
      await harness.call("GET", "/v1/keys/current", { token: harness.tokens.reader }),
    );
    await harness.call("GET", "/v1/status", { token: "wrong-token-value" });
    const lines = harness.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    const requests = lines.filter((line) => line.msg === "request");
    expect(requests.map((line) => [line.method, line.route, line.status, line.token_name])).toEqual(
      [
        ["POST", "/v1/rotate", 200, "deploy"],
        ["GET", "/v1/keys/current", 200, "reader"],
        ["GET", "/v1/status", 401, undefined],
      ],
    );
    const all = harness.logs.join("\n");
    expect(typeof key.api_key).toBe("string");
    expect(all).not.toContain(String(key.api_key));
    for (const token of Object.values(harness.tokens)) expect(all).not.toContain(token.raw);
    expect(all).not.toContain("wrong-token-value");
  });
});

describe("upstream failures", () => {
  it("answers 502 UPSTREAM_UNAVAILABLE for agents when the faucet is down", async () => {
    harness = await startHarness();
    try {
      await harness.sandbox.close();
      const response = await harness.call("GET", "/v1/agents", { token: harness.tokens.status });
      await expectProblem(response, 502, "UPSTREAM_UNAVAILABLE");
    } finally {
      await harness.close();
    }
  });

  it("answers 409 KEY_LOST with the way back when a rotation's reply is lost for good", async () => {
    // The faucet commits the rotation, drops the connection, and (like the real service)
    // cannot replay it by request_id: the new key is gone and the old one is dead.
    harness = await startHarness({
      requestIdSupport: false,
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
    });
    try {
      const response = await harness.call("POST", "/v1/rotate", { body: {} });
      const problem = await expectProblem(response, 409, "KEY_LOST");
      expect(typeof problem.recovery).toBe("string");
      expect(JSON.stringify(problem)).not.toMatch(/lf_[A-Za-z0-9_-]{20,}/);
    } finally {
      await harness.close();
    }
  });
});

describe("per-token rate limit", () => {
  it("answers 429 with Retry-After once a token spends its rotations, other tokens unaffected", async () => {
    harness = await startHarness({ rotateLimit: 2 });
    try {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const response = await harness.call("POST", "/v1/rotate", { body: { dry_run: true } });
        expect(response.status).toBe(200);
      }
      const limited = await harness.call("POST", "/v1/rotate", { body: { dry_run: true } });
      await expectProblem(limited, 429, "RATE_LIMITED");
      expect(limited.headers.get("retry-after")).toBe("30");

      // The bucket refills at 2 per minute: one rotation's worth after 30 s.
      harness.clock?.advance(30 * 1000);
      const refilled = await harness.call("POST", "/v1/rotate", { body: { dry_run: true } });
      expect(refilled.status).toBe(200);
    } finally {
      await harness.close();
    }
  });
});

describe("GET /v1/keys/current", () => {
  it("returns the raw current key to read_key tokens, never cached", async () => {
    harness = await startHarness();
    try {
      const response = await harness.call("GET", "/v1/keys/current", {
        token: harness.tokens.reader,
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("cache-control")).toBe("no-store");
      const body = await json(response);
      expect(body).toMatchObject({
        principal: { kind: "operator" },
        fingerprint: harness.operatorFingerprint,
      });
      expect(fingerprint(String(body.api_key))).toBe(harness.operatorFingerprint);
    } finally {
      await harness.close();
    }
  });
});

describe("createLogger", () => {
  it("redacts a token or key passed to it by mistake", () => {
    const lines: string[] = [];
    const logger = createLogger({
      destination: { write: (line: string) => void lines.push(line) },
    });
    logger.info(
      {
        token: "tok_secret",
        api_key: "lf_secretsecretsecretsecret",
        headers: { authorization: "Bearer tok_secret" },
      },
      "oops",
    );
    expect(lines.join("")).not.toContain("secret");
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
      token: "[redacted]",
      api_key: "[redacted]",
    });
  });
});

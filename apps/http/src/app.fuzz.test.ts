import { ERROR_CODES } from "@rekey/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, makeToken, startHarness } from "./harness.test-helper.js";

// Property-based fuzzing of every route and the headers that matter, in process against the
// real core, a real file store and the sandbox. Whatever arrives: no crash, no 5xx (the faucet is
// up), every error a problem with a code from core's closed set and never INTERNAL, and no raw
// key anywhere but in a 200 from GET /v1/keys/current. Runs: REKEY_FUZZ_RUNS (CI keeps it small;
// the long mode raises it).
const RUNS = Number(process.env.REKEY_FUZZ_RUNS ?? "40");
const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);
const RAW_KEY = /lf_[A-Za-z0-9_-]{20,}/;

let harness: Harness;
const limited = makeToken("limited", ["status", "rotate", "read_key"], ["agent:1"]);
const scraper = makeToken("scraper", ["metrics"]);

beforeAll(async () => {
  harness = await startHarness({ extraTokens: [limited, scraper], rotateLimit: 100_000 });
  await harness.rekey.createAgent({ name: "fuzzed" });
});
afterAll(async () => {
  await harness.close();
});

const paths = fc.oneof(
  fc.constantFrom(
    "/v1/rotate",
    "/v1/status",
    "/v1/agents",
    "/v1/keys/current",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v1/",
    "/",
  ),
  fc.webPath(),
);
const queries = fc.oneof(
  fc.constant(""),
  fc.constantFrom(
    "?agent_id=1",
    "?agent_id=2",
    "?agent_id=0",
    "?agent_id=-1",
    "?agent_id=1&agent_id=2",
  ),
  fc.string({ maxLength: 40 }).map((text) => `?agent_id=${encodeURIComponent(text)}`),
  fc.webQueryParameters().map((query) => `?${query}`),
);
const tokens = fc.constantFrom<string | null>(
  null,
  "status",
  "rotate",
  "release",
  "reader",
  "limited",
  "scraper",
  "garbage",
);
const bodies = fc.oneof(
  fc.constant(undefined),
  fc.json({ maxDepth: 2 }),
  fc.string({ maxLength: 200 }),
  fc
    .record(
      {
        agent_id: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
        dry_run: fc.oneof(fc.boolean(), fc.string(), fc.integer()),
        force: fc.oneof(fc.boolean(), fc.constant("true")),
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
);
const headerValue = fc.string({ maxLength: 80 }).filter((text) => /^[\x20-\x7e]*$/.test(text));
const requests = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"),
  path: paths,
  query: queries,
  token: tokens,
  body: bodies,
  contentType: fc.option(
    fc.constantFrom(
      "application/json",
      "text/plain",
      "application/json; charset=utf-8",
      "multipart/form-data",
    ),
    { nil: undefined },
  ),
  idempotencyKey: fc.option(headerValue, { nil: undefined }),
  requestId: fc.option(headerValue, { nil: undefined }),
  authorization: fc.option(headerValue, { nil: undefined }),
});

describe("createHttpApp under fuzzing", () => {
  it("answers any request without a crash, a 5xx, an unknown code or a leaked key", async () => {
    const tokenRaw: Record<string, string> = {
      status: harness.tokens.status.raw,
      rotate: harness.tokens.rotate.raw,
      release: harness.tokens.release.raw,
      reader: harness.tokens.reader.raw,
      limited: limited.raw,
      scraper: scraper.raw,
      garbage: "tok_not_a_configured_token",
    };
    await fc.assert(
      fc.asyncProperty(requests, async (request) => {
        const headers = new Headers();
        if (request.token !== null) {
          headers.set("authorization", `Bearer ${tokenRaw[request.token]}`);
        } else if (request.authorization !== undefined) {
          headers.set("authorization", request.authorization);
        }
        if (request.contentType !== undefined) headers.set("content-type", request.contentType);
        if (request.idempotencyKey !== undefined) {
          headers.set("idempotency-key", request.idempotencyKey);
        }
        if (request.requestId !== undefined) headers.set("x-request-id", request.requestId);
        const withBody = request.method !== "GET" && request.method !== "HEAD";
        const response = await harness.app.request(`${request.path}${request.query}`, {
          method: request.method,
          headers,
          body: withBody && request.body !== undefined ? request.body : undefined,
        });
        // Keep the sandbox's clock ahead of cooldowns so rotations keep happening.
        harness.clock?.advance(61 * 60_000);
        const text = await response.text();
        const context = `${request.method} ${request.path}${request.query} -> ${response.status} ${text.slice(0, 300)}`;
        expect(response.status, context).toBeLessThan(500);
        if (response.status >= 400 && request.method !== "HEAD") {
          expect(response.headers.get("content-type"), context).toBe("application/problem+json");
          const code = (JSON.parse(text) as { code?: unknown }).code;
          expect(KNOWN_CODES.has(String(code)), context).toBe(true);
          expect(code, context).not.toBe("INTERNAL");
        }
        const keyRoute =
          request.method === "GET" &&
          request.path === "/v1/keys/current" &&
          response.status === 200;
        if (!keyRoute) expect(RAW_KEY.test(text), context).toBe(false);
      }),
      { numRuns: RUNS },
    );
    // Nor in the log.
    for (const line of harness.logs) expect(RAW_KEY.test(line), line).toBe(false);
  }, 120_000);
});

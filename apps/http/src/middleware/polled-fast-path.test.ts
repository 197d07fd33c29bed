import { request as httpRequest } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, makeToken, startHarness } from "../harness.test-helper.js";
import { listen, type RunningServer } from "../server.js";

// The fast path answers successful polls without the Hono app: over real loopback, its answers
// must be the app's own (status, body, headers), and everything it does not answer must still
// reach the app.

let harness: Harness | undefined;
let server: RunningServer | undefined;

afterEach(async () => {
  await server?.shutdown();
  await harness?.close();
  server = undefined;
  harness = undefined;
});

const restricted = makeToken("agent-only", ["status"], ["agent:*"]);

async function start(logLevel?: string) {
  harness = await startHarness({
    extraTokens: [restricted],
    // A minute, not the default 100 ms: a repeated poll must find the body fresh however slow
    // a loaded machine is between two requests (the cache ages on the real monotonic clock),
    // and the poll after this server's own rotation must be re-rendered because the rotation
    // cleared the cache, not because it aged out.
    app: { statusMaxAgeMs: 60_000 },
    ...(logLevel ? { logLevel } : {}),
  });
  const current = harness;
  let appCalls = 0;
  server = await listen({
    fetch: (request) => {
      appCalls += 1;
      return current.app.fetch(request);
    },
    polledFastPath: current.polledFastPath,
    host: "127.0.0.1",
    port: 0,
    logger: (await import("../logger.js")).createLogger({ level: "silent" }),
  });
  const url = server.url;
  return { harness: current, url, appCalls: () => appCalls };
}

interface Answer {
  status: number;
  body: string;
  /** Raw header names and values as sent, minus the ones that differ per response. */
  headers: string[][];
  requestId: string | undefined;
}

/** A GET over loopback, with the headers in the order and case the server wrote them. */
function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = httpRequest(url, { headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => {
        body += chunk;
      });
      response.on("end", () => {
        const pairs: string[][] = [];
        for (let i = 0; i < response.rawHeaders.length; i += 2) {
          pairs.push([response.rawHeaders[i] ?? "", response.rawHeaders[i + 1] ?? ""]);
        }
        resolve({
          status: response.statusCode ?? 0,
          body,
          headers: pairs.filter(([name]) => !/^(date|x-request-id)$/i.test(name ?? "")),
          requestId: response.headers["x-request-id"] as string | undefined,
        });
      });
    });
    sent.on("error", reject);
    sent.end();
  });
}

const bearer = (raw: string) => ({ authorization: `Bearer ${raw}` });

describe("the polled fast path", () => {
  it("answers a repeated status poll and /healthz exactly as the app does, without the app", async () => {
    const { harness, url, appCalls } = await start();
    const auth = bearer(harness.tokens.status.raw);
    const first = await get(`${url}/v1/status`, auth);
    expect(first.status).toBe(200);
    expect(appCalls()).toBe(1);

    const again = await get(`${url}/v1/status`, { ...auth, "x-request-id": "poll-42" });
    expect(appCalls()).toBe(1);
    expect(again).toEqual({ ...first, requestId: "poll-42" });
    // A fresh id when the caller's is unusable, as the app does.
    const forged = await get(`${url}/v1/status`, { ...auth, "x-request-id": "a b;c" });
    expect(forged.requestId).toMatch(/^[0-9a-f-]{36}$/);

    const viaApp = await harness.app.request("/healthz");
    const healthz = await get(`${url}/healthz`);
    expect(appCalls()).toBe(1);
    expect(healthz.status).toBe(200);
    expect(healthz.body).toBe(await viaApp.text());
    expect(healthz.headers.map(([name]) => name?.toLowerCase()).sort()).toEqual(
      ["connection", "content-length", "content-type", "keep-alive"].sort(),
    );
    expect(healthz.headers.find(([name]) => name === "content-type")?.[1]).toBe(
      viaApp.headers.get("content-type"),
    );
  });

  it("leaves refusals, restricted tokens, queries and the poll after a rotation to the app", async () => {
    const { harness, url, appCalls } = await start();
    const before = await get(`${url}/v1/status`, bearer(harness.tokens.status.raw));
    expect(appCalls()).toBe(1);

    expect((await get(`${url}/v1/status`)).status).toBe(401);
    expect((await get(`${url}/v1/status`, bearer("not-a-token"))).status).toBe(401);
    expect((await get(`${url}/v1/status`, bearer(harness.tokens.reader.raw))).status).toBe(403);
    expect((await get(`${url}/v1/status`, bearer(restricted.raw))).status).toBe(403);
    expect(
      (await get(`${url}/v1/status?agent_id=x`, bearer(harness.tokens.status.raw))).status,
    ).toBe(400);
    expect(appCalls()).toBe(6);

    // A rotation through this server: the next poll renders afresh and shows the new key.
    const rotated = await fetch(`${url}/v1/rotate`, {
      method: "POST",
      headers: { ...bearer(harness.tokens.rotate.raw), "content-type": "application/json" },
      body: "{}",
    });
    expect(rotated.status).toBe(200);
    const after = await get(`${url}/v1/status`, bearer(harness.tokens.status.raw));
    expect(appCalls()).toBe(8);
    expect(after.body).not.toBe(before.body);
  });

  it("leaves every poll to the app when debug logging would write its line", async () => {
    const { harness, url, appCalls } = await start("debug");
    const auth = bearer(harness.tokens.status.raw);
    await get(`${url}/v1/status`, auth);
    await get(`${url}/v1/status`, auth);
    await get(`${url}/healthz`);
    expect(appCalls()).toBe(3);
    const lines = harness.logs
      .map((line) => JSON.parse(line))
      .filter((line) => line.msg === "request");
    expect(lines.map((line) => [line.route, line.status])).toEqual([
      ["/v1/status", 200],
      ["/v1/status", 200],
      ["/healthz", 200],
    ]);
  });
});

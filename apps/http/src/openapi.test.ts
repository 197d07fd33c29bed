import { readFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.test-helper.js";

interface Operation {
  operationId?: string;
  security?: unknown[];
  requestBody?: { required?: boolean };
  parameters?: Array<{ name: string; schema: { type?: string } }>;
  responses: Record<string, { headers?: Record<string, unknown> }>;
}
interface Document {
  info: { license?: { name: string } };
  servers?: Array<{ url: string }>;
  paths: Record<string, Record<string, Operation>>;
}

let harness: Harness;
let document: Document;

beforeEach(async () => {
  harness = await startHarness({ rotateLimit: 3 });
  document = (await (
    await harness.call("GET", "/openapi.json", { token: null })
  ).json()) as Document;
});
afterEach(async () => {
  await harness.close();
});

/**
 * Checks that the document describes a response the app really gave: its path, method and
 * status, and each header a client may act on.
 */
function expectDocumented(method: string, path: string, response: Response): void {
  const operation = document.paths[path]?.[method.toLowerCase()];
  const documented = operation?.responses[String(response.status)];
  expect(documented, `${method} ${path} ${response.status}`).toBeDefined();
  for (const header of ["x-request-id", "retry-after", "idempotent-replayed"]) {
    if (!response.headers.has(header)) continue;
    const names = Object.keys(documented?.headers ?? {}).map((name) => name.toLowerCase());
    expect(names, `${method} ${path} ${response.status} ${header}`).toContain(header);
  }
}

describe("the OpenAPI document", () => {
  it("is the one committed as apps/http/openapi.json (`rekey-http openapi` writes it)", async () => {
    const committed = JSON.parse(
      await readFile(new URL("../openapi.json", import.meta.url), "utf8"),
    ) as Document;
    expect(document).toEqual(committed);
  });

  it("names a server, a license, an operationId everywhere, and no security on open routes", () => {
    expect(document.servers?.[0]?.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(document.info.license?.name).toBe("MIT");
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        const open = !path.startsWith("/v1/");
        expect(operation.security, `${method} ${path}`).toEqual(open ? [] : [{ bearerAuth: [] }]);
      }
    }
    const agentId = document.paths["/v1/status"]?.get?.parameters?.find(
      (p) => p.name === "agent_id",
    );
    expect(agentId?.schema.type).toBe("integer");
  });

  it("documents every status and header the server answers with", async () => {
    const calls: Array<[string, string, Parameters<Harness["call"]>[2]]> = [
      ["GET", "/v1/status", {}],
      ["GET", "/v1/status?agent_id=abc", {}],
      ["GET", "/v1/status?agent_id=999999", {}],
      ["GET", "/v1/status", { token: null }],
      ["GET", "/v1/keys/current", {}],
      ["GET", "/v1/keys/current?agent_id=0", { token: harness.tokens.reader }],
      ["GET", "/v1/agents", {}],
      ["POST", "/v1/rotate", { rawBody: "agent_id=1", headers: { "content-type": "text/plain" } }],
      ["POST", "/v1/rotate", { body: { agent_id: 999_999 } }],
      ["POST", "/v1/rotate", { body: {}, headers: { "idempotency-key": "once" } }],
      ["POST", "/v1/rotate", { body: {}, headers: { "idempotency-key": "once" } }],
      ["POST", "/v1/rotate", { body: {} }],
      ["POST", "/v1/rotate", { body: {} }],
      ["GET", "/healthz", { token: null }],
      ["GET", "/readyz", { token: null }],
      ["GET", "/metrics", { token: null }],
    ];
    const statuses = new Set<number>();
    for (const [method, url, options] of calls) {
      const response = await harness.call(method, url, options);
      statuses.add(response.status);
      expectDocumented(method, url.split("?")[0] ?? url, response);
    }
    // The calls above reach these answers (the cooldown and the rate limit included).
    expect([...statuses].sort()).toEqual([200, 400, 401, 403, 404, 409, 415, 429]);
  });

  it("agrees with the server about the rotate body: optional, an empty POST rotates", async () => {
    expect(document.paths["/v1/rotate"]?.post?.requestBody?.required).toBe(false);
    const response = await harness.call("POST", "/v1/rotate");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      dry_run: false,
      principal: { kind: "operator" },
    });
  });
});

describe("a known path asked with another method", () => {
  it("is 405 with Allow, not 404", async () => {
    const wrong = await harness.call("GET", "/v1/rotate");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect(wrong.headers.get("content-type")).toBe("application/problem+json");
    const probe = await harness.call("POST", "/healthz", { token: null });
    expect(probe.status).toBe(405);
    expect(probe.headers.get("allow")).toBe("GET");
    expect((await harness.call("GET", "/nowhere", { token: null })).status).toBe(404);
  });
});

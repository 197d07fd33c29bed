import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import createClient from "openapi-fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { paths } from "./generated/rekey-http.js";
import { run, type Started, start } from "./processes.js";

// rekey-http's OpenAPI document as a client developer meets it: linted by redocly, turned into
// types by openapi-typescript, and used through openapi-fetch against the running server.

const repo = fileURLToPath(new URL("../../", import.meta.url));
const httpDir = join(repo, "apps/http");
const e2eBin = (name: string) => join(repo, "e2e/node_modules/.bin", name);
const TOKEN = "tok_e2e_openapi_client_0123456789";

describe("rekey-http's OpenAPI document", () => {
  it("passes `redocly lint` with no error and no warning", async () => {
    const linted = await run(e2eBin("redocly"), ["lint"], { cwd: httpDir, env: process.env });
    const output = `${linted.stdout}${linted.stderr}`;
    expect(linted.code, output).toBe(0);
    expect(output).toContain("Your API description is valid");
    // (Redocly's own notice about Node 20's end of life is not about the document.)
    expect(output).not.toMatch(/You have \d+ (warning|error)/);
  });

  it("generates the committed client types (`pnpm --filter @rekey/e2e run generate-http-client`)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rekey-openapi-ts-"));
    try {
      const out = join(dir, "rekey-http.ts");
      const generated = await run(
        e2eBin("openapi-typescript"),
        [join(httpDir, "openapi.json"), "-o", out],
        { cwd: dir, env: process.env },
      );
      expect(generated.code, generated.stderr).toBe(0);
      const committed = await readFile(
        new URL("./generated/rekey-http.ts", import.meta.url),
        "utf8",
      );
      expect(await readFile(out, "utf8")).toBe(committed);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a generated openapi-fetch client against the live server", () => {
  let sandbox: RunningSandbox;
  let home: string;
  let server: Started;
  let client: ReturnType<typeof createClient<paths>>;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    home = await mkdtemp(join(tmpdir(), "rekey-openapi-client-"));
    const env = { PATH: process.env.PATH, REKEY_HOME: home, REKEY_API_URL: sandbox.url };
    const registered = await run(
      process.execPath,
      [
        join(repo, "apps/cli/dist/rekey.cjs"),
        "register",
        "--recovery-code-file",
        join(home, "r.txt"),
      ],
      { env },
    );
    expect(registered.code, registered.stderr).toBe(0);
    const hashed = await run(process.execPath, [join(httpDir, "dist/bin.js"), "hash-token"], {
      env,
      input: TOKEN,
    });
    server = await start(process.execPath, [join(httpDir, "dist/bin.js"), "--port", "0"], {
      env: {
        ...env,
        REKEY_HTTP_TOKENS: JSON.stringify([
          { name: "client", sha256: hashed.stdout.trim(), scopes: ["status", "rotate"] },
        ]),
      },
      ready: /^(http:\/\/\S+)$/m,
    });
    client = createClient<paths>({
      baseUrl: server.match[1] ?? "",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await sandbox?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("reads the status, plans and rotates, and gets typed problems back", async () => {
    const status = await client.GET("/v1/status");
    expect(status.response.status).toBe(200);
    const before = status.data?.fingerprint;
    expect(before).toMatch(/^fp:/);

    const plan = await client.POST("/v1/rotate", { body: { dry_run: true } });
    expect(plan.data).toMatchObject({ dry_run: true, fingerprint: before });

    const rotated = await client.POST("/v1/rotate", {
      body: {},
      params: { header: { "idempotency-key": "e2e-client-1" } },
    });
    expect(rotated.response.status).toBe(200);
    const result = rotated.data;
    if (result?.dry_run !== false) throw new Error("expected a rotation");
    expect(result.old_fingerprint).toBe(before);

    const refused = await client.POST("/v1/rotate", { body: {} });
    expect(refused.response.status).toBe(409);
    expect(refused.error).toMatchObject({ code: "COOLDOWN_ACTIVE" });
    expect(refused.response.headers.get("retry-after")).toMatch(/^\d+$/);

    const unknown = await client.POST("/v1/rotate", { body: { agent_id: 999_999 } });
    expect(unknown.response.status).toBe(404);
    expect(unknown.error).toMatchObject({ code: "NOT_FOUND" });
  });
});

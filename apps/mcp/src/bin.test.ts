import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { fingerprint } from "@rekey/core";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { seen, startWorld, type World } from "./world.test-helper.js";

const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
const children: ChildProcess[] = [];
let world: World;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGTERM");
  await world.close();
});

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "", REKEY_HOME: world.dir, ...extra };
}

function expectNoSecrets(text: string): void {
  for (const secret of seen.secrets) expect(text.includes(secret)).toBe(false);
}

/**
 * A real MCP client on the built binary over stdio (`rekey-mcp ARGS`, the world's store plus
 * `env`); `stderr()` is what the server has written there so far.
 */
async function connectStdio(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, ...args],
    env: childEnv(env),
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: "rekey-mcp-test", version: "0.0.0" });
  await client.connect(transport);
  return { client, stderr: () => stderr };
}

/** Starts `rekey-mcp --http ...` and waits for the URL it logs on stderr. */
async function startHttp(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; stderr: () => string; child: ChildProcess }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: childEnv(env),
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (\S+)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`rekey-mcp exited ${code}: ${stderr}`)));
  });
  return { url, stderr: () => stderr, child };
}

describe("rekey-mcp over stdio (the built binary)", () => {
  it("lists the tools, rotates into the store, and never writes a key to stdout or stderr", async () => {
    const { client, stderr } = await connectStdio();
    expect(client.getServerVersion()).toMatchObject({ name: "rekey", version: "0.1.0" });

    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([
      "get_key_status",
      "list_agents",
      "rotate_api_key",
      "whoami",
    ]);

    const rotated = (await client.callTool({
      name: "rotate_api_key",
      arguments: {},
    })) as CallToolResult;
    await world.rememberSecrets();
    const newKey = await world.storedKey("default");
    expect(rotated.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: fingerprint(newKey ?? ""),
    });
    const whoami = (await client.callTool({ name: "whoami", arguments: {} })) as CallToolResult;
    expect(whoami.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: fingerprint(newKey ?? ""),
    });

    await client.close();
    expect(stderr()).toMatch(/rotate_api_key: rotated operator/);
    expectNoSecrets(JSON.stringify([rotated, whoami]) + stderr());
  });
  // Without arguments the start-up front answers the handshake; --store skips the front.
  it.each([
    ["through the start-up front", () => []],
    ["through the SDK's stdio transport (--store)", () => ["--store", world.dir]],
  ])(
    "answers a tool call written before stdin closes (a host piping its requests), then exits: %s",
    async (_how, args) => {
      const child = spawn(process.execPath, [bin, ...args()], {
        env: childEnv(),
        stdio: ["pipe", "pipe", "pipe"],
      });
      children.push(child);
      let stdout = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      const lines = [
        {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "pipe", version: "0" },
          },
        },
        { jsonrpc: "2.0", method: "notifications/initialized" },
        { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } },
      ];
      // One write and the end at once: stdin ends while the server is still loading.
      child.stdin?.end(lines.map((line) => `${JSON.stringify(line)}\n`).join(""));
      const [code] = await once(child, "exit");
      const replies = stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { id?: unknown; result?: { isError?: boolean } });
      expect(replies.map((reply) => reply.id)).toEqual([1, 2]);
      expect(replies[1]?.result?.isError).not.toBe(true);
      expect(code).toBe(0);
      expectNoSecrets(stdout);
    },
  );
});

describe("rekey-mcp --as (the built binary)", () => {
  it("runs as an agent created with `rekey agents create`, sharing its record with the operator", async () => {
    const { agentId } = await world.setup.createAgent({ name: "worker" });
    const { client } = await connectStdio(["--as", `agent:${agentId}`]);
    const whoami = (await client.callTool({ name: "whoami", arguments: {} })) as CallToolResult;
    expect(whoami.structuredContent).toMatchObject({
      principal: { kind: "agent", agent_id: agentId },
      id: agentId,
    });
    const rotated = (await client.callTool({
      name: "rotate_api_key",
      arguments: {},
    })) as CallToolResult;
    expect(rotated.isError).toBeFalsy();
    await client.close();
    await world.rememberSecrets();
    // The operator's profile sees the agent's own rotation: its key and its cooldown.
    const status = await world.setup.status({ kind: "agent", agentId });
    expect(status.fingerprint).toBe(
      (rotated.structuredContent as { fingerprint: string }).fingerprint,
    );
    expect(status.cooldownRemainingSeconds).toBeGreaterThan(25 * 60);
    expectNoSecrets(JSON.stringify([whoami, rotated]));
  });
});

describe("rekey-mcp --as an agent, refused another agent's status", () => {
  it("get_key_status for another agent: the hint points at this session's own status, not a rotation", async () => {
    const { agentId } = await world.setup.createAgent({ name: "worker" });
    const { client } = await connectStdio(["--as", `agent:${agentId}`]);
    const refused = (await client.callTool({
      name: "get_key_status",
      arguments: { agent_id: agentId + 1 },
    })) as CallToolResult;
    await client.close();
    expect(refused.isError).toBe(true);
    const said = JSON.stringify(refused);
    expect(said).toContain("FORBIDDEN");
    expect(said).not.toMatch(/rotate/i);
    expect(said).toMatch(/get_key_status without agent_id/);
  });
});

describe("rekey-mcp start-up", () => {
  it("warns on stderr when the profile holds no key, naming the command that stores one", async () => {
    const { client, stderr } = await connectStdio(["--profile", "empty"]);
    // The warning comes once the handshake is over, without any tool call.
    for (let waited = 0; waited < 5000 && !stderr().includes("holds no key"); waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.close();
    expect(stderr()).toMatch(/warning: profile "empty" holds no key/);
    expect(stderr()).toContain("rekey login --profile empty");
  });

  it("answers every tool call with why the store did not open, instead of ending the session", async () => {
    // A PostgreSQL store without a master key source: opening it fails, after the stdio
    // front has already answered the handshake. The database is never reached.
    const { client, stderr } = await connectStdio([], {
      REKEY_STORE: "postgres://rekey:hunter2@127.0.0.1:9/rekey",
    });
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain("rotate_api_key");
    for (const name of ["get_key_status", "rotate_api_key"]) {
      const result = (await client.callTool({ name, arguments: {} })) as CallToolResult;
      expect(result.isError).toBe(true);
      const text = result.content
        .map((block) => (block.type === "text" ? block.text : ""))
        .join("");
      expect(text).toMatch(/^STORE_LOCKED: A PostgreSQL store needs a master key/);
      expect(text).toContain("REKEY_MASTER_KEY_FILE");
      expect(text).not.toContain("hunter2");
    }
    await client.close();
    expect(stderr()).toContain("STORE_LOCKED");
    expect(stderr()).not.toContain("hunter2");
  });

  it("says nothing of the kind when the profile holds a key", async () => {
    const { client, stderr } = await connectStdio();
    await client.listTools();
    await client.close();
    expect(stderr()).not.toContain("holds no key");
  });
});

const postgresUrl = inject("postgresUrl");

describe.skipIf(postgresUrl === "")("rekey-mcp on a PostgreSQL store (the built binary)", () => {
  const schema = `rekey_mcp_${randomBytes(6).toString("hex")}`;
  const storeUrl = `${postgresUrl}?schema=${schema}`;
  afterAll(() => dropPostgresSchema(postgresUrl, schema));

  const connect = async () => {
    const { client } = await connectStdio([], { REKEY_STORE: storeUrl, ...TEST_MASTER_KEY_ENV });
    return client;
  };

  it("rotates into the database, and an agent's session in another process sees the new key", async () => {
    await world.close();
    world = await startWorld({ store: storeUrl });
    const [first, second] = [await connect(), await connect()];
    const before = (await second.callTool({
      name: "get_key_status",
      arguments: {},
    })) as CallToolResult;
    const rotated = (await first.callTool({
      name: "rotate_api_key",
      arguments: {},
    })) as CallToolResult;
    const newKey = await world.storedKey("default");
    expect(rotated.structuredContent).toMatchObject({ fingerprint: fingerprint(newKey ?? "") });
    expect(before.structuredContent).not.toMatchObject({ fingerprint: fingerprint(newKey ?? "") });
    const whoami = (await second.callTool({ name: "whoami", arguments: {} })) as CallToolResult;
    expect(whoami.structuredContent).toMatchObject({ fingerprint: fingerprint(newKey ?? "") });
    expect(world.sandbox.stats().rotations).toBe(1);
    await world.rememberSecrets();
    expectNoSecrets(JSON.stringify([before, rotated, whoami]));
    await Promise.all([first.close(), second.close()]);
  });
});

describe("rekey-mcp --http", () => {
  it("on loopback, makes a bearer token in a 0600 file, requires it, and removes it at exit", async () => {
    const { url, stderr, child } = await startHttp(["--http", "0"]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const tokenFile = /bearer token in (\S+)/.exec(stderr())?.[1] ?? "";
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(tokenFile))).mode & 0o777).toBe(0o700);
    const token = (await readFile(tokenFile, "utf8")).trim();
    expect(stderr()).not.toContain(token);

    // Another local user, without the file: a stateless call, no initialize.
    const anonymous = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "rotate_api_key", arguments: {} },
      }),
    });
    expect(anonymous.status).toBe(401);
    expect(world.sandbox.stats().rotations).toBe(0);

    const client = new Client({ name: "http-test", version: "0.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    const whoami = (await client.callTool({ name: "whoami", arguments: {} })) as CallToolResult;
    expect(whoami.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: fingerprint((await world.storedKey("default")) ?? ""),
    });
    await client.close();
    child.kill("SIGTERM");
    await once(child, "exit");
    await expect(stat(dirname(tokenFile))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("with a bearer token, refuses requests without it", async () => {
    const token = "test-bearer-token-0123456789abcdef";
    const { url } = await startHttp(["--http", "0"], { REKEY_MCP_BEARER_TOKEN: token });
    const anonymous = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(anonymous.status).toBe(401);

    const client = new Client({ name: "http-test", version: "0.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    await client.connect(transport);
    expect((await client.listTools()).tools).toHaveLength(4);
    await client.close();
  });

  it("serves HTTPS with --tls-cert and --tls-key; off loopback without TLS it warns", async () => {
    const cert = join(world.dir, "cert.pem");
    const key = join(world.dir, "key.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      { stdio: "ignore" },
    );
    const token = "tls-bearer-token-0123456789abcdef";
    const secure = await startHttp(["--http", "0", "--tls-cert", cert, "--tls-key", key], {
      REKEY_MCP_BEARER_TOKEN: token,
    });
    expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const ca = await readFile(cert);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = httpsRequest(
        secure.url,
        {
          method: "POST",
          ca,
          headers: {
            authorization: `Bearer ${token}`,
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
          },
        },
        (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode));
        },
      );
      request.on("error", reject);
      request.end(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }));
    });
    expect(status).toBe(200);
    expect(secure.stderr()).not.toContain("without TLS");

    const clear = await startHttp(["--http", "0", "--host", "0.0.0.0"], {
      REKEY_MCP_BEARER_TOKEN: token,
    });
    expect(clear.stderr()).toContain("without TLS");
  });

  it("refuses a bearer token file other users can read, and a token short enough to guess", async () => {
    /** Runs `rekey-mcp --http 0 ARGS` to its exit (a refusal) and returns the code and stderr. */
    const refused = async (args: string[], env: Record<string, string> = {}) => {
      const child = spawn(process.execPath, [bin, "--http", "0", ...args], {
        env: childEnv(env),
        stdio: ["ignore", "ignore", "pipe"],
      });
      children.push(child);
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const [code] = await once(child, "exit");
      return { code, stderr };
    };
    const tokenFile = join(world.dir, "bearer-token");
    const token = randomBytes(32).toString("hex");
    await writeFile(tokenFile, `${token}\n`);
    await chmod(tokenFile, 0o644);
    const open = await refused(["--bearer-token-file", tokenFile]);
    expect(open.code).toBe(2);
    expect(open.stderr).toContain(
      `CONFIG_INVALID: Refusing --bearer-token-file ${tokenFile}: it has mode 644`,
    );
    expect(open.stderr).toContain(`chmod 600 ${tokenFile}`);
    expect(open.stderr).not.toContain("listening on");

    await writeFile(tokenFile, "abcde\n");
    await chmod(tokenFile, 0o600);
    const short = await refused(["--bearer-token-file", tokenFile]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("has 5 characters; a token must have at least 32");
    expect(short.stderr).not.toContain("abcde");
    const shortEnv = await refused([], { REKEY_MCP_BEARER_TOKEN: "abcde" });
    expect(shortEnv.code).toBe(2);
    expect(shortEnv.stderr).toContain("REKEY_MCP_BEARER_TOKEN has 5 characters");

    await writeFile(tokenFile, `${token}\n`);
    const { url } = await startHttp(["--http", "0", "--bearer-token-file", tokenFile]);
    const client = new Client({ name: "http-test", version: "0.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    expect((await client.listTools()).tools).toHaveLength(4);
    await client.close();
  });

  it("refuses to start on a non-loopback host without a bearer token", async () => {
    const child = spawn(process.execPath, [bin, "--http", "0", "--host", "0.0.0.0"], {
      env: childEnv(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(child);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /CONFIG_INVALID: Refusing to serve on 0\.0\.0\.0 without a bearer token/,
    );
  });
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

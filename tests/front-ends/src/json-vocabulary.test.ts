import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import {
  agentListSchema,
  agentSchema,
  auditEntrySchema,
  errorSchema,
  healthSchema,
  historySchema,
  keyStatusSchema,
  rotationSchema,
} from "@rekey/core/vocabulary";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// One sandbox faucet and one file store, driven through the three built front ends: the CLI's
// --json, a real MCP client of rekey-mcp over stdio, and rekey-http. Each answer must parse
// with core's vocabulary schemas (docs/json-vocabulary.md), and the three must agree.

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/** The built binary of a workspace app, from its package.json `bin`. */
async function binOf(pkg: string): Promise<string> {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as {
    bin: Record<string, string>;
  };
  const [first] = Object.values(manifest.bin);
  if (first === undefined) throw new Error(`${pkg} has no bin`);
  return join(dirname(manifestPath), first);
}

const token = `tok_${randomBytes(24).toString("base64url")}`;
let sandbox: RunningSandbox;
let dir: string;
let env: Record<string, string>;
let mcp: Client;
let http: { url: string; stop(): Promise<void> };
let cliBin: string;

/** `rekey <args> --json`: the document on stdout, or the error document on stderr. */
async function cli(args: string[]): Promise<{ code: number; json: Record<string, unknown> }> {
  try {
    const { stdout } = await run(process.execPath, [cliBin, ...args, "--json"], { env });
    return { code: 0, json: JSON.parse(stdout) as Record<string, unknown> };
  } catch (error) {
    const failed = error as { code: number; stderr: string };
    return { code: failed.code, json: JSON.parse(failed.stderr) as Record<string, unknown> };
  }
}

async function callTool(name: string, args: Record<string, unknown> = {}) {
  return (await mcp.callTool({ name, arguments: args })) as CallToolResult;
}

/** The facts of an MCP error result: `CODE: message`, then `name: value` lines (JSON objects). */
function mcpError(result: CallToolResult): Record<string, unknown> {
  expect(result.isError).toBe(true);
  const block = result.content[0];
  const [first = "", ...rest] = block?.type === "text" ? block.text.split("\n") : [];
  const headline = /^([A-Z_]+): (.*)$/.exec(first);
  const facts: Record<string, unknown> = { code: headline?.[1], message: headline?.[2] };
  for (const line of rest) {
    const [, name = "", value = ""] = /^([a-z_]+): (.*)$/.exec(line) ?? [];
    facts[name] = /^(\d+|\[.*\]|\{.*\})$/.test(value) ? JSON.parse(value) : value;
  }
  return facts;
}

async function httpGet(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${http.url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function httpPost(path: string, body: unknown) {
  const response = await fetch(`${http.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/**
 * The audit events `/v1/events` replays after the entry `afterSeq` (its id is
 * `<seq>-<16 hex of its hash>`), until `count` have arrived.
 */
async function httpAuditEvents(
  after: { seq: number; hash: string },
  count: number,
): Promise<unknown[]> {
  const abort = new AbortController();
  const response = await fetch(`${http.url}/v1/events`, {
    headers: {
      authorization: `Bearer ${token}`,
      "last-event-id": `${after.seq}-${after.hash.slice(0, 16)}`,
    },
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  const reader = (response.body ?? new ReadableStream()).getReader();
  const decoder = new TextDecoder();
  const events: unknown[] = [];
  let text = "";
  try {
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let end = text.indexOf("\n\n");
      while (end !== -1) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        end = text.indexOf("\n\n");
        // Audit-log events carry an id; live ones (cooldown.ended) do not.
        if (!/^id: /m.test(block)) continue;
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data !== undefined) events.push(JSON.parse(data));
      }
    }
  } finally {
    abort.abort();
  }
  return events;
}

async function startHttp(
  extraEnv: Record<string, string> = {},
): Promise<{ url: string; stop(): Promise<void> }> {
  const tokens = JSON.stringify([
    {
      name: "vocabulary",
      sha256: createHash("sha256").update(token).digest("hex"),
      scopes: ["status", "rotate", "force"],
    },
  ]);
  const child = spawn(process.execPath, [await binOf("@rekey/http"), "--port", "0"], {
    env: { ...env, ...extraEnv, REKEY_HTTP_TOKENS: tokens },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split("\n")[0];
      if (stdout.includes("\n") && line) resolve(line.trim());
    });
    void exited.then(() => reject(new Error(`rekey-http exited: ${stderr}`)));
  });
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
  dir = await mkdtemp(join(tmpdir(), "rekey-vocabulary-"));
  env = {
    PATH: process.env.PATH ?? "",
    HOME: dir,
    REKEY_HOME: join(dir, "home"),
    REKEY_API_URL: sandbox.url,
    NO_COLOR: "1",
  };
  cliBin = await binOf("@rekey/cli");
  expect((await cli(["register", "--recovery-code-file", join(dir, "recovery.txt")])).code).toBe(0);
  for (const name of ["first", "second"])
    expect((await cli(["agents", "create", name])).code).toBe(0);

  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [await binOf("@rekey/mcp")],
    env,
    stderr: "pipe",
  });
  mcp = new Client({ name: "vocabulary-test", version: "0.0.0" });
  await mcp.connect(transport);
  http = await startHttp();
});

afterAll(async () => {
  await mcp?.close();
  await http?.stop();
  await sandbox?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/**
 * The vocabulary part of a front end's answer: without what only that front end adds (the CLI's
 * envelope and extras, MCP's `session_switched` and `message`, HTTP's RFC 9457 fields).
 */
function shared(body: unknown): Record<string, unknown> {
  const extras = new Set([
    "schemaVersion",
    "command",
    "store_health",
    "identity",
    "identity_error",
    "session_switched",
    "type",
    "title",
    "status",
    "detail",
  ]);
  return Object.fromEntries(
    Object.entries((body ?? {}) as Record<string, unknown>).filter(([name]) => !extras.has(name)),
  );
}

/** What must agree between two views of the same state (seconds left tick on between calls). */
function settled(view: Record<string, unknown>): Record<string, unknown> {
  const { cooldown_remaining_seconds: _left, key_age_seconds: _age, ...rest } = view;
  return rest;
}

describe("one JSON vocabulary across the CLI, MCP and HTTP", () => {
  it("rotations through each front end have the same shape, and status agrees after them", async () => {
    // Each front end rotates a different key: a key rotated twice would meet its cooldown.
    const byCli = await cli(["rotate", "--agent", "1", "--yes"]);
    const byMcp = await callTool("rotate_api_key", { agent_id: 2 });
    const byHttp = await httpPost("/v1/rotate", {});
    expect(byCli.code).toBe(0);
    expect(byMcp.isError).toBeFalsy();
    expect(byHttp.status).toBe(200);
    const { message: _message, ...mcpRotation } = byMcp.structuredContent ?? {};
    const rotations = [byCli.json, mcpRotation, byHttp.body].map((body) =>
      rotationSchema.strict().parse(shared(body)),
    );
    expect(rotations.map((rotation) => rotation.principal)).toEqual([
      { kind: "agent", agent_id: 1 },
      { kind: "agent", agent_id: 2 },
      { kind: "operator" },
    ]);
    expect(byCli.json).toMatchObject({ schemaVersion: 2, command: "rotate" });

    // The status of each rotated key, read through all three, is one document.
    for (const [index, rotation] of rotations.entries()) {
      const agentId = rotation.principal.agent_id;
      const [viaCli, viaMcp, viaHttp] = await Promise.all([
        cli(agentId === undefined ? ["status"] : ["status", "--agent", String(agentId)]),
        callTool("get_key_status", agentId === undefined ? {} : { agent_id: agentId }),
        httpGet(agentId === undefined ? "/v1/status" : `/v1/status?agent_id=${agentId}`),
      ]);
      const [fromCli, fromMcp, fromHttp] = [
        viaCli.json,
        viaMcp.structuredContent,
        viaHttp.body,
      ].map((body) => settled(keyStatusSchema.strict().parse(shared(body))));
      expect(fromMcp, `status ${index}`).toEqual(fromCli);
      expect(fromHttp, `status ${index}`).toEqual(fromCli);
      expect(fromCli).toMatchObject({
        principal: rotation.principal,
        fingerprint: rotation.fingerprint,
        cooldown_until: rotation.cooldown_until,
        last_rotation: { request_id: rotation.request_id, new_fingerprint: rotation.fingerprint },
      });
    }
  });

  it("lists the same agents in the same shape", async () => {
    const [viaCli, viaMcp, viaHttp] = await Promise.all([
      cli(["agents", "list"]),
      callTool("list_agents"),
      httpGet("/v1/agents"),
    ]);
    const [fromCli, fromMcp, fromHttp] = [viaCli.json, viaMcp.structuredContent, viaHttp.body].map(
      (body) => {
        const { agents } = agentListSchema.strict().parse(shared(body));
        return agents.map((agent) => settled(agentSchema.strict().parse(agent)));
      },
    );
    expect(fromCli).toHaveLength(2);
    expect(fromMcp).toEqual(fromCli);
    expect(fromHttp).toEqual(fromCli);
    expect(fromCli?.map((agent) => agent.agent_id)).toEqual([1, 2]);
  });

  it("refuses a rotation inside the cooldown with the same error facts", async () => {
    const [viaCli, viaMcp, viaHttp] = [
      await cli(["rotate", "--yes"]),
      await callTool("rotate_api_key"),
      await httpPost("/v1/rotate", {}),
    ];
    expect(viaCli.code).toBe(5);
    expect(viaHttp.status).toBe(409);
    const fromCli = errorSchema.strict().parse((viaCli.json as { error: unknown }).error);
    const fromMcp = errorSchema.strict().parse(mcpError(viaMcp));
    const { detail, request_id: _id, ...problem } = viaHttp.body;
    const fromHttp = errorSchema.strict().parse(shared(problem));
    expect(detail).toBe(fromHttp.message);
    for (const facts of [fromCli, fromMcp, fromHttp]) {
      expect(facts).toMatchObject({
        code: "COOLDOWN_ACTIVE",
        principal: { kind: "operator" },
        cooldown_until: fromCli.cooldown_until,
      });
      expect(facts.retry_after_seconds).toBeGreaterThan(59 * 60 - 30);
      expect(facts.hint).toEqual(expect.any(String));
    }
  });

  it("history: the CLI's entries and HTTP's audit events are the same entries in one shape", async () => {
    const history = await cli(["history", "--verify"]);
    expect(history.code).toBe(0);
    const { entries, verification } = historySchema.strict().parse(shared(history.json));
    expect(verification).toEqual({ ok: true, count: entries.length });
    const [first, ...rest] = entries.map((entry) => auditEntrySchema.strict().parse(entry));
    if (first === undefined) throw new Error("the audit log is empty");
    // Everything after the first entry, replayed by rekey-http from the same log.
    const replayed = (await httpAuditEvents(first, rest.length)).map((event) =>
      auditEntrySchema.strict().parse(event),
    );
    expect(replayed).toEqual(rest);
    // The rotations of the first test, by all three front ends, name their principal one way.
    const rotations = rest.filter(
      (entry) => entry.action === "rotate" && entry.outcome === "success",
    );
    expect(rotations.map((entry) => [entry.surface, entry.principal])).toEqual([
      ["cli", { kind: "agent", agent_id: 1 }],
      ["mcp", { kind: "agent", agent_id: 2 }],
      ["http", { kind: "operator" }],
    ]);
  });

  it("health: doctor's report and HTTP's /readyz agree on the store and the faucet", async () => {
    const doctor = await cli(["doctor"]);
    const { health } = doctor.json as { health: unknown };
    const report = healthSchema.strict().parse(health);
    const ready = await fetch(`${http.url}/readyz`);
    const body = (await ready.json()) as { store: { ok: boolean }; upstream: { ok: boolean } };
    // /readyz (no token) says only whether each answers; doctor says where and why.
    expect(body.store.ok).toBe(report.store.readable);
    expect(body.upstream.ok).toBe(report.upstream.ok);
    expect(report).toMatchObject({ store: { ok: true }, upstream: { ok: true } });
  });

  it("a profile with no key yet: the same error facts, saying so and how to store one", async () => {
    const emptyEnv = { ...env, REKEY_PROFILE: "empty" };
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [await binOf("@rekey/mcp")],
      env: emptyEnv,
      stderr: "pipe",
    });
    const emptyMcp = new Client({ name: "vocabulary-test-empty", version: "0.0.0" });
    await emptyMcp.connect(transport);
    const emptyHttp = await startHttp({ REKEY_PROFILE: "empty" });
    try {
      const viaCli = await cli(["--profile", "empty", "status"]);
      const viaMcp = (await emptyMcp.callTool({
        name: "get_key_status",
        arguments: {},
      })) as CallToolResult;
      const viaHttp = await fetch(`${emptyHttp.url}/v1/status`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(viaCli.code).toBe(4);
      expect(viaHttp.status).toBe(404);
      const fromCli = errorSchema.strict().parse((viaCli.json as { error: unknown }).error);
      const fromMcp = errorSchema.strict().parse(mcpError(viaMcp));
      const {
        detail: _detail,
        request_id: _id,
        ...problem
      } = (await viaHttp.json()) as Record<string, unknown>;
      const fromHttp = errorSchema.strict().parse(shared(problem));
      for (const facts of [fromCli, fromMcp, fromHttp]) {
        expect(facts.code).toBe("NOT_FOUND");
        expect(facts.message).toMatch(/^Profile "empty" holds no key yet/);
        // How to get one: a person is told the commands, a model to ask for them.
        expect(facts.hint).toMatch(/rekey register/);
      }
      expect(fromMcp.message).toBe(fromCli.message);
      expect(fromHttp.message).toBe(fromCli.message);
    } finally {
      await emptyMcp.close();
      await emptyHttp.stop();
    }
  });
});

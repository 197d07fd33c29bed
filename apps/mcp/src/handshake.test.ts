import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { answerHandshake } from "./handshake.js";
import { askServer, describeHandshake, initializeParams } from "./handshake-data.js";
import { VERSION } from "./version.js";

// The front answers a host's handshake from data computed at build time; these tests hold it to
// what the SDK's server itself answers, for every protocol version the SDK speaks.

const handshake = await describeHandshake(VERSION);
const versions = [...handshake.supportedProtocolVersions, "1999-01-01"];

describe("the precomputed handshake", () => {
  it("answers initialize as the SDK's server does, for each protocol version asked", async () => {
    for (const version of versions) {
      const request = {
        jsonrpc: "2.0",
        id: 7,
        method: "initialize",
        params: initializeParams(version),
      } as const;
      const [expected] = await askServer(VERSION, [request]);
      expect(answerHandshake(handshake, request)).toEqual({
        kind: "reply",
        id: 7,
        result: expected,
      });
    }
  });

  it("answers tools/list and ping as the SDK's server does", async () => {
    const requests: JSONRPCMessage[] = [
      { jsonrpc: "2.0", id: 1, method: "tools/list" },
      { jsonrpc: "2.0", id: "two", method: "tools/list", params: { cursor: "x" } },
      { jsonrpc: "2.0", id: 3, method: "ping" },
    ];
    const expected = await askServer(VERSION, requests);
    expect(requests.map((request) => answerHandshake(handshake, request))).toEqual([
      { kind: "reply", id: 1, result: expected[0] },
      { kind: "reply", id: "two", result: expected[1] },
      { kind: "reply", id: 3, result: expected[2] },
    ]);
    expect(expected[0]?.tools).toHaveLength(4);
  });

  it("leaves everything else to the SDK: tool calls, malformed handshakes, other methods", () => {
    const others = [
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami" } },
      { jsonrpc: "2.0", id: 2, method: "initialize", params: { protocolVersion: "2025-06-18" } },
      { jsonrpc: "2.0", id: 3, method: "tools/list", params: [] },
      { jsonrpc: "2.0", id: 1.5, method: "ping" },
      { jsonrpc: "1.0", id: 4, method: "ping" },
      { jsonrpc: "2.0", id: 5, method: "resources/list" },
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } },
    ];
    for (const message of others) expect(answerHandshake(handshake, message)).toBeUndefined();
    expect(
      answerHandshake(handshake, { jsonrpc: "2.0", method: "notifications/initialized" }),
    ).toEqual({ kind: "initialized" });
  });
});

describe("the built rekey-mcp (dist/bin.js)", () => {
  it("answers the handshake with the current server's answers, byte for byte the same JSON values", async () => {
    const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
    const home = await mkdtemp(join(tmpdir(), "rekey-mcp-handshake-"));
    try {
      const child = spawn(process.execPath, [bin], {
        env: { PATH: process.env.PATH ?? "", REKEY_HOME: home },
        stdio: ["pipe", "pipe", "ignore"],
      });
      const lines: string[] = [];
      let pending = "";
      const twoReplies = new Promise<void>((resolve) => {
        child.stdout.on("data", (chunk: Buffer) => {
          pending += chunk.toString("utf8");
          const parts = pending.split("\n");
          pending = parts.pop() ?? "";
          lines.push(...parts);
          if (lines.length >= 2) resolve();
        });
      });
      const requests: JSONRPCMessage[] = [
        { jsonrpc: "2.0", id: 1, method: "initialize", params: initializeParams("2025-06-18") },
        { jsonrpc: "2.0", method: "notifications/initialized" },
        { jsonrpc: "2.0", id: 2, method: "tools/list" },
      ];
      child.stdin.write(requests.map((request) => `${JSON.stringify(request)}\n`).join(""));
      await twoReplies;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin.end();
      // A session that ends within the handshake ends the process at once.
      expect(await exited).toBe(0);
      const expected = await askServer(VERSION, [requests[0], requests[2]] as JSONRPCMessage[]);
      expect(lines.map((line) => JSON.parse(line))).toEqual([
        { jsonrpc: "2.0", id: 1, result: expected[0] },
        { jsonrpc: "2.0", id: 2, result: expected[1] },
      ]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
  it("hands a tool call to the real server, which never answers initialize a second time", async () => {
    const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
    const home = await mkdtemp(join(tmpdir(), "rekey-mcp-handover-"));
    try {
      const child = spawn(process.execPath, [bin], {
        env: { PATH: process.env.PATH ?? "", REKEY_HOME: home },
        stdio: ["pipe", "pipe", "ignore"],
      });
      const replies: Array<{ id?: unknown; result?: unknown; error?: { code?: number } }> = [];
      let pending = "";
      const threeReplies = new Promise<void>((resolve) => {
        child.stdout.on("data", (chunk: Buffer) => {
          pending += chunk.toString("utf8");
          const parts = pending.split("\n");
          pending = parts.pop() ?? "";
          replies.push(...parts.map((line) => JSON.parse(line)));
          if (replies.length >= 3) resolve();
        });
      });
      const send = (message: unknown) => child.stdin.write(`${JSON.stringify(message)}\n`);
      send({ jsonrpc: "2.0", id: 1, method: "initialize", params: initializeParams("2025-06-18") });
      send({ jsonrpc: "2.0", method: "notifications/initialized" });
      // Sent at once: the front cannot answer it, so the server loads and takes over.
      send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "no_such_tool" } });
      send({ jsonrpc: "2.0", id: 3, method: "ping" });
      await threeReplies;
      // Give a second initialize reply (the replayed one) time to show, if it were sent.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin.end();
      await exited;
      expect(replies.map((reply) => reply.id)).toEqual([1, 2, 3]);
      expect(replies[1]?.error?.code).toBe(-32602);
      expect(replies[2]?.result).toEqual({});
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

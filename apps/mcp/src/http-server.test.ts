import { connect, type Socket } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningHttpServer, startHttpServer } from "./http-server.js";
import { createMcpServer } from "./server.js";
import { startWorld, type World } from "./world.test-helper.js";

// The HTTP transport over real loopback sockets: who may call it, from which page, and how long
// a slow or idle client may hold a connection.

const TOKEN = "mcp-test-token-0123456789abcdef";
let world: World;
let running: RunningHttpServer | undefined;
const sockets: Socket[] = [];

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await running?.close();
  running = undefined;
  await world.close();
});

async function serve(limits?: Parameters<typeof startHttpServer>[0]["limits"]) {
  running = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    bearerToken: TOKEN,
    limits,
    createServer: () => createMcpServer({ rekey: world.rekey(), revealKeys: true }),
    log: () => {},
  });
  return running.url;
}

function rotateCall(url: string, headers: Record<string, string>) {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "rotate_api_key", arguments: {} },
    }),
  });
}

describe("startHttpServer", () => {
  it("refuses a stateless tools/call without the bearer token, or with a wrong one", async () => {
    const url = await serve();
    for (const authorization of [undefined, "Bearer wrong", `Bearer ${TOKEN}x`, TOKEN]) {
      const response = await rotateCall(url, authorization ? { authorization } : {});
      expect(response.status, authorization).toBe(401);
      expect(await response.text()).not.toContain("lf_");
    }
    expect(world.sandbox.stats().rotations).toBe(0);
    // The refused body was never read: the connection is not kept for another request.
    expect((await rotateCall(url, {})).headers.get("connection")).toBe("close");

    const client = new Client({ name: "http-test", version: "0.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    expect((await client.listTools()).tools).toHaveLength(4);
    await client.close();
  });

  it("refuses a request from another Origin, even with a good Host and token", async () => {
    const url = await serve();
    const evil = await rotateCall(url, {
      authorization: `Bearer ${TOKEN}`,
      origin: "http://evil.com",
    });
    expect(evil.status).toBe(403);
    expect(world.sandbox.stats().rotations).toBe(0);
    const own = await rotateCall(url, {
      authorization: `Bearer ${TOKEN}`,
      origin: new URL(url).origin,
    });
    expect(own.status).toBe(200);
    expect(world.sandbox.stats().rotations).toBe(1);
  });

  it("closes slow-header and idle clients, caps connections, and serves again", async () => {
    const url = await serve({
      headersTimeoutMs: 400,
      requestTimeoutMs: 800,
      keepAliveTimeoutMs: 400,
      checkIntervalMs: 100,
      maxConnections: 3,
    });
    const port = Number(new URL(url).port);
    const open = (): { socket: Socket; closed: Promise<void> } => {
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => {});
      // Consumed, or the socket never sees the end of the 408 and never closes.
      socket.resume();
      sockets.push(socket);
      return { socket, closed: new Promise((resolve) => socket.once("close", () => resolve())) };
    };
    const within = (promise: Promise<void>, ms: number) =>
      Promise.race([
        promise.then(() => "closed" as const),
        new Promise<"open">((resolve) => setTimeout(() => resolve("open"), ms)),
      ]);
    const hogs = [open(), open(), open()];
    await new Promise((resolve) => setTimeout(resolve, 100));
    hogs[0]?.socket.write("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const drip = setInterval(() => hogs[0]?.socket.write("X-Slow: 1\r\n"), 100);
    try {
      // The cap is reached: a fourth client is closed at once.
      expect(await within(open().closed, 2000)).toBe("closed");
      const states = [];
      for (const hog of hogs) states.push(await within(hog.closed, 5000));
      expect(states).toEqual(["closed", "closed", "closed"]);
    } finally {
      clearInterval(drip);
    }
    expect((await rotateCall(url, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });
});

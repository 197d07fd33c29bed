import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from "node:net";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { expectRekeyError } from "./client.test-helper.js";
import { closeAllDispatchers, type SendOptions, sendJson } from "./transport.js";

// The faults the sandbox cannot produce, from real servers on loopback: a connection that never
// finishes its TLS handshake, and a reply cut off halfway through its body.

const servers: Array<Server | TcpServer> = [];
const sockets = new Set<Socket>();

async function listen<T extends Server | TcpServer>(server: T): Promise<string> {
  servers.push(server);
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function options(url: string, overrides: Partial<SendOptions> = {}): SendOptions {
  return {
    url: new URL(url),
    body: JSON.stringify({ action: "get_balance" }),
    userAgent: "rekey-test",
    connectTimeoutMs: 2000,
    requestTimeoutMs: 5000,
    signal: undefined,
    action: "get_balance",
    idempotent: false,
    ...overrides,
  };
}

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(
    servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))),
  );
});

afterAll(async () => {
  await closeAllDispatchers();
});

describe("node's HTTP client under the faucet client's limits", () => {
  it("a server that accepts but never finishes TLS: connect timeout, surely not sent", async () => {
    // Accepts the TCP connection and says nothing, so the TLS handshake never completes.
    const host = await listen(createTcpServer(() => {}));
    const started = Date.now();
    const error = await expectRekeyError(
      sendJson(options(`https://${host}/ai-agents/api`, { connectTimeoutMs: 200 })),
      "UPSTREAM_TIMEOUT",
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.message).toContain("Could not connect to the faucet within 200 ms");
    // Nothing left before the handshake, so even a rotation did not happen.
    expect(error.details.outcomeUnknown).toBeUndefined();
  });

  it("a reply cut off mid-body: unavailable, and a rotation's outcome is unknown", async () => {
    const host = await listen(
      createServer((_request, response) => {
        response.writeHead(200, { "content-type": "application/json", "content-length": "100" });
        response.write('{"success":true,');
        setTimeout(() => response.socket?.destroy(), 20);
      }),
    );
    const error = await expectRekeyError(
      sendJson(options(`http://${host}/ai-agents/api`, { action: "regenerate_operator_key" })),
      "UPSTREAM_UNAVAILABLE",
    );
    expect(error.details.outcomeUnknown).toBe(true);
  });

  it("reuses one keep-alive connection for requests in turn", async () => {
    let connections = 0;
    const server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"success":true}');
    });
    server.on("connection", () => {
      connections += 1;
    });
    const host = await listen(server);
    for (let round = 0; round < 3; round += 1) {
      const reply = await sendJson(options(`http://${host}/ai-agents/api`));
      expect(reply).toEqual({ status: 200, retryAfter: undefined, text: '{"success":true}' });
    }
    expect(connections).toBe(1);
  });

  it("a never-ending body: cut at 1 MiB, a rotation's outcome unknown, the next call on a new connection", async () => {
    let calls = 0;
    const host = await listen(
      createServer((_request, response) => {
        calls += 1;
        if (calls > 1) return void response.end('{"success":true}');
        response.writeHead(200, { "content-type": "application/json" });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (!response.destroyed && response.write(chunk));
          if (!response.destroyed) response.once("drain", pump);
        };
        pump();
      }),
    );
    const error = await expectRekeyError(
      sendJson(options(`http://${host}/ai-agents/api`, { action: "regenerate_operator_key" })),
      "UPSTREAM_INVALID_RESPONSE",
    );
    expect(error.details.outcomeUnknown).toBe(true);
    const next = await sendJson(options(`http://${host}/ai-agents/api`));
    expect(next.text).toBe('{"success":true}');
  });

  it("a reply that trickles a byte at a time: the request timeout ends it, outcome unknown", async () => {
    const host = await listen(
      createServer((_request, response) => {
        response.writeHead(200, { "content-type": "application/json" });
        const timer = setInterval(() => response.write(" "), 20);
        response.once("close", () => clearInterval(timer));
      }),
    );
    const started = Date.now();
    const error = await expectRekeyError(
      sendJson(
        options(`http://${host}/ai-agents/api`, {
          action: "regenerate_operator_key",
          requestTimeoutMs: 300,
        }),
      ),
      "UPSTREAM_TIMEOUT",
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.details.outcomeUnknown).toBe(true);
  });

  it("a redirect is not followed: the 3xx comes back as it is, to one server", async () => {
    let elsewhere = 0;
    const other = await listen(
      createServer((_request, response) => {
        elsewhere += 1;
        response.end("{}");
      }),
    );
    const host = await listen(
      createServer((_request, response) => {
        response.writeHead(307, { location: `http://${other}/steal` });
        response.end();
      }),
    );
    const reply = await sendJson(options(`http://${host}/ai-agents/api`));
    expect(reply.status).toBe(307);
    expect(elsewhere).toBe(0);
  });
});

import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.test-helper.js";
import { listen, type RunningServer } from "./server.js";

// Careless and hostile clients over real loopback sockets: oversized bodies, slow headers and
// bodies, too many connections. Limits are set small so the test waits for a second or two.

let harness: Harness | undefined;
let server: RunningServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await server?.shutdown();
  await harness?.close();
  server = undefined;
  harness = undefined;
});

const SMALL_LIMITS = {
  headersTimeoutMs: 400,
  requestTimeoutMs: 800,
  keepAliveTimeoutMs: 400,
  checkIntervalMs: 100,
};

async function start(limits: Parameters<typeof listen>[0]["limits"] = SMALL_LIMITS) {
  harness = await startHarness();
  const started = await listen({
    fetch: harness.app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: (await import("./logger.js")).createLogger({
      level: "silent",
      destination: { write: () => {} },
    }),
    limits,
  });
  server = started;
  return { harness, port: Number(new URL(started.url).port) };
}

/** A raw client: what it received, and when the server closed it (or undefined if still open). */
function rawClient(port: number) {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  let received = "";
  socket.on("data", (chunk) => {
    received += chunk.toString("latin1");
  });
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) => {
    const opened = Date.now();
    socket.once("close", () => resolve(Date.now() - opened));
  });
  const connected = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return {
    socket,
    connected,
    received: () => received,
    /** Resolves to the ms the socket lived, or "open" when still open after `withinMs`. */
    closedWithin: (withinMs: number) =>
      Promise.race([
        closed,
        new Promise<"open">((resolve) => setTimeout(() => resolve("open"), withinMs)),
      ]),
  };
}

describe("listen", () => {
  it("closes the connection after a 413, so the client's next request is not parsed from the body", async () => {
    const { harness: h, port } = await start();
    const client = rawClient(port);
    await client.connected;
    client.socket.write(
      [
        "POST /v1/rotate HTTP/1.1",
        "Host: 127.0.0.1",
        `Authorization: Bearer ${h.tokens.rotate.raw}`,
        "Content-Type: application/json",
        `Content-Length: ${2 * 1024 * 1024}`,
        "",
        "",
      ].join("\r\n"),
    );
    client.socket.write(Buffer.alloc(64 * 1024, 0x20));
    expect(await client.closedWithin(3000)).not.toBe("open");
    expect(client.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(client.received()).toMatch(/\r\nconnection: close\r\n/i);
    expect(h.sandbox.stats().rotations).toBe(0);
  });

  it("closes a slow-header client, a slow-body client and an idle one within the limits", async () => {
    const { port } = await start();
    const slowHeaders = rawClient(port);
    const slowBody = rawClient(port);
    const idle = rawClient(port);
    await Promise.all([slowHeaders.connected, slowBody.connected, idle.connected]);
    slowHeaders.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    slowBody.socket.write(
      "POST /v1/rotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    // One header line, one body byte every 100 ms: each keeps its socket busy, never done.
    const drip = setInterval(() => {
      if (!slowHeaders.socket.destroyed) slowHeaders.socket.write("X-Slow: 1\r\n");
      if (!slowBody.socket.destroyed) slowBody.socket.write(" ");
    }, 100);
    try {
      const lived = await Promise.all([
        slowHeaders.closedWithin(5000),
        slowBody.closedWithin(5000),
        idle.closedWithin(5000),
      ]);
      for (const ms of lived) expect(ms).not.toBe("open");
    } finally {
      clearInterval(drip);
    }
  });

  it("caps connections, and serves again once slow clients are timed out", async () => {
    // Headers time out after 2 s, not 400 ms: a hog timed out before the fifth client arrives (a
    // stall of the loaded test process) would free its slot, and the fifth would get a 408.
    const { port } = await start({
      ...SMALL_LIMITS,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 3000,
      maxConnections: 4,
    });
    const hogs = Array.from({ length: 4 }, () => rawClient(port));
    await Promise.all(hogs.map((hog) => hog.connected));
    for (const hog of hogs) hog.socket.write("GET /healthz HTTP/1.1\r\n");
    // Give the server a moment to accept all four.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const turnedAway = rawClient(port);
    expect(await turnedAway.closedWithin(2000)).not.toBe("open");
    expect(turnedAway.received()).toBe("");

    await Promise.all(hogs.map((hog) => hog.closedWithin(5000)));
    const served = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(served.status).toBe(200);
  });
});

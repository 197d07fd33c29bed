import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  agent,
  type CredentialStore,
  createRekey,
  openCredentialStore,
  type Rekey,
  systemClock,
} from "@rekey/core";
import { auditEntrySchema } from "@rekey/core/vocabulary";
import { startSandbox } from "@rekey/sandbox";
import { createPostgresStore } from "@rekey/store-postgres";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { createHttpApp } from "../app.js";
import { type Faucet, makeToken, startFaucet, startHarness } from "../harness.test-helper.js";
import { createLogger } from "../logger.js";
import { listen, type RunningServer } from "../server.js";
import { createEventHub, type EventHub, eventIdOf } from "./event-hub.js";
import { readEvents, type SseReader } from "./sse-client.test-helper.js";

const cliBin = fileURLToPath(new URL("../../../cli/dist/rekey.cjs", import.meta.url));

const monitor = makeToken("monitor", ["status"]);
const deploy = makeToken("deploy", ["status", "rotate"]);
const reader = makeToken("reader", ["read_key"]);
// The hub's own slow poll (5 s by default) is off, so an event that arrives came from the store's
// change notice (file watch; LISTEN/NOTIFY). The wait is for a loaded machine, not a latency
// target: a test asserts what arrives, bench/src/console.bench.mjs how fast.
const NO_POLL_MS = 600_000;
const NOTICE_WAIT_MS = 10_000;

/** rekey-http's app on a real loopback server, over a file store another process can share. */
interface Served {
  faucet: Faucet;
  store: CredentialStore;
  rekey: Rekey;
  events: EventHub;
  server: RunningServer;
  agents: number[];
  readers: SseReader[];
  open(token: string | null, headers?: Record<string, string>): Promise<SseReader>;
  close(): Promise<void>;
}

async function serve(
  options: { limits?: Parameters<typeof createHttpApp>[0]["eventLimits"] } = {},
): Promise<Served> {
  const faucet = await startFaucet({ testClock: false });
  const store = await openCredentialStore({ spec: faucet.dir, env: {} });
  const rekey = createRekey({ store, surface: "http", env: {} });
  const agents = [
    (await rekey.createAgent({ name: "alpha" })).agentId,
    (await rekey.createAgent({ name: "beta" })).agentId,
  ];
  const restricted = makeToken("alpha-only", ["status"], [`agent:${agents[0]}`]);
  const events = createEventHub({ store, clock: systemClock, pollMs: NO_POLL_MS });
  const app = createHttpApp({
    rekey,
    events,
    tokens: [monitor, deploy, reader, restricted].map((token) => token.config),
    rateLimit: { capacity: 100, windowMs: 60_000 },
    logger: createLogger({ level: "silent" }),
    clock: systemClock,
    ...(options.limits === undefined ? {} : { eventLimits: options.limits }),
  });
  const server = await listen({
    fetch: app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: createLogger({ level: "silent" }),
  });
  const readers: SseReader[] = [];
  tokenOf.set("alpha-only", restricted.raw);
  return {
    faucet,
    store,
    rekey,
    events,
    server,
    agents,
    readers,
    async open(token, headers = {}) {
      const response = await fetch(`${server.url}/v1/events`, {
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...headers,
        },
      });
      const sse = readEvents(response);
      readers.push(sse);
      return sse;
    },
    async close() {
      await Promise.all(readers.map((sse) => sse.close()));
      events.close();
      await server.shutdown();
      await rekey.close();
      await store.close();
      await faucet.close();
    },
  };
}
const tokenOf = new Map<string, string>();

/** Runs the built `rekey` CLI in its own process on the same store. */
function runCli(dir: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: dir, REKEY_STORE: dir, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.stdout.resume();
    child.once("exit", (code) => resolve({ code, stderr }));
  });
}

let served: Served;
afterEach(async () => {
  await served?.close();
});

describe("GET /v1/events", () => {
  beforeEach(async () => {
    served = await serve();
  });

  it("streams a rotation made by the CLI in another process on the store's change notice, with an audit-log id and no key", async () => {
    const stream = await served.open(monitor.raw);
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    // The stream is open (its first bytes arrived) before the rotation starts.
    await expect.poll(() => stream.text().length).toBeGreaterThan(0);
    const agentId = served.agents[0] ?? 0;
    const cli = await runCli(served.faucet.dir, ["rotate", "--agent", String(agentId), "--yes"]);
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    const event = await stream.next((received) => received.type === "rotation", NOTICE_WAIT_MS);

    const record = await served.rekey.status(agent(agentId));
    const last = (await served.store.readAudit()).at(-1);
    // The entry as `rekey history --json` shows it: core's vocabulary, nothing more.
    expect(auditEntrySchema.strict().parse(event.data)).toMatchObject({
      action: "rotate",
      outcome: "success",
      principal: { kind: "agent", agent_id: agentId },
      label: `agent ${agentId}`,
      surface: "cli",
      new_fingerprint: record.fingerprint,
    });
    expect(event.id).toBe(last === undefined ? "" : eventIdOf(last));
    const key = await served.rekey.keyProvider.current(agent(agentId));
    expect(key.key.length).toBeGreaterThan(10);
    expect(stream.text()).not.toContain(key.key);
  });

  it("resumes after Last-Event-ID from the audit log, and asks an unknown id to resync", async () => {
    const [alpha = 0, beta = 0] = served.agents;
    await served.rekey.rotateKey({ target: agent(alpha) });
    const afterAlpha = (await served.store.readAudit()).at(-1);
    await served.rekey.rotateKey({ target: agent(beta) });
    const log = await served.store.readAudit();

    const resumed = await served.open(monitor.raw, {
      "last-event-id": afterAlpha === undefined ? "" : eventIdOf(afterAlpha),
    });
    const replayed = await resumed.next((event) => event.type === "rotation");
    expect(replayed.data.label).toBe(`agent ${beta}`);
    expect(resumed.events.map((event) => event.id)).toEqual(
      log.slice(afterAlpha?.seq).map(eventIdOf),
    );

    const lost = await served.open(monitor.raw, { "last-event-id": "999-0123456789abcdef" });
    const resync = await lost.next((event) => event.type === "resync");
    expect(resync.id).toBe(eventIdOf(log.at(-1) ?? { seq: 0, hash: "" }));

    // Live events follow a replay without a gap or a repeat.
    await served.rekey.rotateKey({ target: agent(alpha), force: true });
    const live = await resumed.next(
      (event) => event.type === "rotation" && event.data.label === `agent ${alpha}`,
    );
    expect(live.data.seq).toBe(log.length + 1);
    expect(new Set(resumed.events.map((event) => event.id)).size).toBe(resumed.events.length);
  });

  it("shows no event of another faucet that shares the store, though its principal ids repeat", async () => {
    const other = await startSandbox({ port: 0 });
    const elsewhere = createRekey({
      store: served.store,
      surface: "cli",
      env: {},
      profile: "other",
      baseUrl: other.url,
    });
    try {
      await elsewhere.register({ name: "other operator" });
      const [alpha = 0] = served.agents;
      let otherAgent = 0;
      while (otherAgent < alpha)
        otherAgent = (await elsewhere.createAgent({ name: "twin" })).agentId;
      expect(otherAgent).toBe(alpha);
      const restricted = await served.open(tokenOf.get("alpha-only") ?? "");
      const everything = await served.open(monitor.raw);
      await expect.poll(() => restricted.text().length).toBeGreaterThan(0);
      await elsewhere.rotateKey({ target: agent(alpha) });
      await served.rekey.rotateKey({ target: agent(alpha) });
      await restricted.next((event) => event.type === "rotation");
      await everything.next((event) => event.type === "rotation");
      expect(restricted.events.filter((event) => event.type === "rotation")).toHaveLength(1);
      expect(everything.events.map((event) => event.data.profile)).not.toContain("other");
    } finally {
      await elsewhere.close();
      await other.close();
    }
  });

  it("needs a token with the status scope, and shows a restricted token only its principals", async () => {
    expect((await served.open(null)).response.status).toBe(401);
    const wrongScope = await served.open(reader.raw);
    expect(wrongScope.response.status).toBe(403);

    const restricted = await served.open(tokenOf.get("alpha-only") ?? "");
    expect(restricted.response.status).toBe(200);
    await expect.poll(() => restricted.text().length).toBeGreaterThan(0);
    const [alpha = 0, beta = 0] = served.agents;
    await served.rekey.rotateKey({ target: agent(beta) });
    await served.rekey.rotateKey({ target: agent(alpha) });
    await restricted.next((event) => event.type === "rotation");
    expect(restricted.events.map((event) => event.data.label)).toEqual([`agent ${alpha}`]);
  });
});

describe("GET /v1/events bounds", () => {
  it("refuses streams past the limit with 429 and Retry-After, and frees a slot when a client leaves", async () => {
    served = await serve({ limits: { maxStreams: 2 } });
    const first = await served.open(monitor.raw);
    await served.open(deploy.raw);
    const third = await served.open(monitor.raw);
    expect(third.response.status).toBe(429);
    expect(third.response.headers.get("retry-after")).toBe("2");
    await first.close();
    await expect
      .poll(async () => {
        const again = await served.open(monitor.raw);
        return again.response.status;
      })
      .toBe(200);
  });

  it("ends open streams when the server shuts down, so shutdown does not wait for them", async () => {
    served = await serve();
    const stream = await served.open(monitor.raw);
    await expect.poll(() => stream.text().length).toBeGreaterThan(0);
    served.events.close();
    const started = performance.now();
    expect(await served.server.shutdown()).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("cooldown.ended", () => {
  it("is sent when a cooldown a rotation started runs out", async () => {
    const harness = await startHarness();
    try {
      const created = await harness.rekey.createAgent({ name: "gamma" });
      const rotated = await harness.rekey.rotateKey({ target: agent(created.agentId) });
      // 300 ms before the end of the 30-minute cooldown, on the shared test clock.
      harness.clock?.set(Date.parse(rotated.cooldownUntil) - 300);
      const response = await harness.call("GET", "/v1/events", { token: harness.tokens.status });
      const stream = readEvents(response);
      const ended = await stream.next((event) => event.type === "cooldown.ended", 3000);
      expect(ended.data).toMatchObject({
        principal: { kind: "agent", agent_id: created.agentId },
        label: `agent ${created.agentId}`,
        fingerprint: rotated.newFingerprint,
        cooldown_until: rotated.cooldownUntil,
      });
      expect(ended.id).toBeUndefined();
      await stream.close();
    } finally {
      await harness.close();
    }
  });
});

const postgresUrl = inject("postgresUrl");

// Replicas share a PostgreSQL store: a rotation through one reaches the event streams of another
// (LISTEN/NOTIFY, then the audit table).
describe.skipIf(postgresUrl === "")("GET /v1/events on a PostgreSQL store", () => {
  it("streams a rotation made by another replica on its notice", async () => {
    const schema = `rekey_events_${randomBytes(6).toString("hex")}`;
    const url = `${postgresUrl}?schema=${schema}`;
    const faucet = await startFaucet({ testClock: false });
    const writer = createPostgresStore({ url, env: TEST_MASTER_KEY_ENV });
    const other = createRekey({
      store: writer,
      surface: "http",
      baseUrl: faucet.sandbox.url,
      env: {},
    });
    const reader = createPostgresStore({ url, env: TEST_MASTER_KEY_ENV });
    const events = createEventHub({ store: reader, clock: systemClock, pollMs: NO_POLL_MS });
    const app = createHttpApp({
      rekey: createRekey({ store: reader, surface: "http", env: {} }),
      events,
      tokens: [monitor.config],
      rateLimit: { capacity: 100, windowMs: 60_000 },
      logger: createLogger({ level: "silent" }),
      clock: systemClock,
    });
    try {
      await other.register({ name: "replicated operator" });
      const response = await app.request("/v1/events", {
        headers: { authorization: `Bearer ${monitor.raw}` },
      });
      const stream = readEvents(response);
      await expect.poll(() => stream.text().length).toBeGreaterThan(0);
      // Let the hub take its baseline of the log before the rotation.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const rotated = await other.rotateKey();
      const event = await stream.next((received) => received.type === "rotation", NOTICE_WAIT_MS);
      expect(event.data).toMatchObject({ new_fingerprint: rotated.newFingerprint });
      await stream.close();
    } finally {
      events.close();
      await other.close();
      await writer.close();
      await reader.close();
      await faucet.close();
      await dropPostgresSchema(postgresUrl, schema);
    }
  });
});

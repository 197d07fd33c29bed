import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import {
  createRekey,
  fingerprint,
  openCredentialStore,
  rekeyMaster,
  verifyAuditChain,
} from "@rekey/core";
import { createPostgresStore } from "@rekey/store-postgres";
import {
  dropPostgresSchema,
  queryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { type Faucet, makeToken, startFaucet } from "./harness.test-helper.js";
import { hashToken } from "./tokens.js";

const appDir = fileURLToPath(new URL("..", import.meta.url));
const binPath = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

const deploy = makeToken("deploy", ["status", "rotate", "force"]);
const monitor = makeToken("monitor", ["status"]);
const reader = makeToken("reader", ["read_key"]);
const TOKENS = JSON.stringify([deploy.config, monitor.config, reader.config]);

interface RunningBin {
  url: string;
  child: ChildProcess;
  stderr(): string;
  exit: Promise<number | null>;
}

/** `fdLimit`: run under `ulimit -n fdLimit`, as a small container would. */
function spawnBin(args: string[], env: Record<string, string>, fdLimit?: number) {
  const command =
    fdLimit === undefined
      ? [process.execPath, binPath, ...args]
      : [
          "/bin/sh",
          "-c",
          `ulimit -n ${fdLimit} && exec "$0" "$@"`,
          process.execPath,
          binPath,
          ...args,
        ];
  const [file = "", ...commandArgs] = command;
  const child = spawn(file, commandArgs, {
    cwd: appDir,
    env: { PATH: process.env.PATH ?? "", HOME: env.REKEY_STORE ?? appDir, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exit, stdout: () => stdout, stderr: () => stderr };
}

const running: RunningBin[] = [];

/** Starts the built server on port 0 and waits for the URL line on stdout. */
async function startBin(
  faucet: Faucet,
  args: string[] = [],
  env: Record<string, string> = {},
  fdLimit?: number,
): Promise<RunningBin> {
  const spawned = spawnBin(
    ["--port", "0", ...args],
    { REKEY_STORE: faucet.dir, REKEY_HTTP_TOKENS: TOKENS, ...env },
    fdLimit,
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no URL line; stderr: ${spawned.stderr()}`)),
      10_000,
    );
    spawned.child.stdout?.on("data", () => {
      const line = spawned.stdout().split("\n")[0];
      if (spawned.stdout().includes("\n") && line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    void spawned.exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${spawned.stderr()}`));
    });
  });
  const bin = { url, child: spawned.child, stderr: spawned.stderr, exit: spawned.exit };
  running.push(bin);
  return bin;
}

async function stopBin(bin: RunningBin): Promise<number | null> {
  bin.child.kill("SIGTERM");
  return bin.exit;
}

function call(
  bin: RunningBin,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers = new Headers(options.headers);
  const token = options.token === undefined ? deploy.raw : options.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  if (options.body !== undefined) headers.set("content-type", "application/json");
  return fetch(`${bin.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
}

let faucet: Faucet | undefined;

afterEach(async () => {
  for (const bin of running.splice(0)) {
    if (bin.child.exitCode === null && bin.child.signalCode === null) {
      bin.child.kill("SIGKILL");
      await bin.exit;
    }
  }
  await faucet?.close();
  faucet = undefined;
});

describe("rekey-http (built bin)", () => {
  it("prints its URL and serves every endpoint, scope and error over a real socket", async () => {
    faucet = await startFaucet({ testClock: false });
    const bin = await startBin(faucet);
    expect(bin.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    expect((await call(bin, "GET", "/healthz", { token: null })).status).toBe(200);
    expect((await call(bin, "GET", "/readyz", { token: null })).status).toBe(200);
    expect((await call(bin, "GET", "/openapi.json", { token: null })).status).toBe(200);
    expect((await call(bin, "GET", "/v1/status", { token: null })).status).toBe(401);
    expect((await call(bin, "GET", "/v1/status", { token: reader.raw })).status).toBe(403);
    expect((await call(bin, "POST", "/v1/rotate", { token: monitor.raw, body: {} })).status).toBe(
      403,
    );

    const status = await call(bin, "GET", "/v1/status", { token: monitor.raw });
    expect(await status.json()).toMatchObject({ fingerprint: faucet.operatorFingerprint });
    const agents = await call(bin, "GET", "/v1/agents", { token: monitor.raw });
    expect(await agents.json()).toEqual({ agents: [] });

    const rotated = await call(bin, "POST", "/v1/rotate", { body: {} });
    expect(rotated.status).toBe(200);
    const rotation = (await rotated.json()) as { fingerprint: string; cooldown_until: string };
    expect(rotation.fingerprint).not.toBe(faucet.operatorFingerprint);

    const refused = await call(bin, "POST", "/v1/rotate", { body: {} });
    expect(refused.status).toBe(409);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(3500);

    const unknownField = await call(bin, "POST", "/v1/rotate", { body: { agent: 7 } });
    expect(unknownField.status).toBe(400);
    const malformed = await fetch(`${bin.url}/v1/rotate`, {
      method: "POST",
      headers: { authorization: `Bearer ${deploy.raw}`, "content-type": "application/json" },
      body: "{",
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get("content-type")).toBe("application/problem+json");
    const oversized = await fetch(`${bin.url}/v1/rotate`, {
      method: "POST",
      headers: { authorization: `Bearer ${deploy.raw}`, "content-type": "application/json" },
      body: JSON.stringify({ padding: "x".repeat(64 * 1024) }),
    });
    expect(oversized.status).toBe(413);

    const key = await call(bin, "GET", "/v1/keys/current", { token: reader.raw });
    expect(key.status).toBe(200);
    expect(key.headers.get("cache-control")).toBe("no-store");
    const { api_key: apiKey } = (await key.json()) as { api_key: string };
    expect(fingerprint(apiKey)).toBe(rotation.fingerprint);

    const metrics = await (await call(bin, "GET", "/metrics", { token: null })).text();
    expect(metrics).toContain('rekey_http_rotations_total{outcome="rotated"} 1');
    expect(metrics).toMatch(/rekey_cooldown_remaining_seconds\{principal="operator"\} \d{4}/);

    expect(await stopBin(bin)).toBe(0);
    const logs = bin.stderr();
    expect(logs).toContain('"msg":"request"');
    expect(logs).toContain('"token_name":"deploy"');
    expect(logs).not.toContain(apiKey);
    for (const token of [deploy, monitor, reader]) expect(logs).not.toContain(token.raw);
  });

  it("replays an Idempotency-Key after a restart, and refuses it with another body", async () => {
    faucet = await startFaucet({ testClock: false });
    const headers = { "idempotency-key": "release-42" };
    const first = await startBin(faucet);
    const original = await call(first, "POST", "/v1/rotate", { body: {}, headers });
    expect(original.status).toBe(200);
    const originalBody = await original.json();
    expect(await stopBin(first)).toBe(0);

    const second = await startBin(faucet);
    const replayed = await call(second, "POST", "/v1/rotate", { body: {}, headers });
    expect(replayed.status).toBe(200);
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(await replayed.json()).toEqual(originalBody);
    expect(faucet.sandbox.stats().rotations).toBe(1);

    const reused = await call(second, "POST", "/v1/rotate", { body: { force: true }, headers });
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED" });
    expect(faucet.sandbox.stats().rotations).toBe(1);
  });

  it("answers 50 concurrent requests with one Idempotency-Key with one rotation and one answer", async () => {
    faucet = await startFaucet({ testClock: false });
    const bin = await startBin(faucet);
    const headers = { "idempotency-key": "burst" };
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => call(bin, "POST", "/v1/rotate", { body: {}, headers })),
    );
    const bodies = await Promise.all(responses.map((response) => response.text()));
    expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
    expect(new Set(bodies).size).toBe(1);
    expect(faucet.sandbox.stats().rotations).toBe(1);
  });

  it("shuts down cleanly on a SIGTERM sent the moment it says it is listening", async () => {
    faucet = await startFaucet({ testClock: false });
    // Several starts: the window between the "listening" line and the handlers was short.
    for (let attempt = 0; attempt < 4; attempt++) {
      const spawned = spawnBin(["--port", "0"], {
        REKEY_STORE: faucet.dir,
        REKEY_HTTP_TOKENS: TOKENS,
      });
      let sent = false;
      spawned.child.stderr?.on("data", () => {
        if (!sent && spawned.stderr().includes('"msg":"listening"')) {
          sent = true;
          spawned.child.kill("SIGTERM");
        }
      });
      const ended = await new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        spawned.child.once("exit", (code, signal) => resolve({ code, signal })),
      );
      expect(sent).toBe(true);
      expect(ended).toEqual({ code: 0, signal: null });
      expect(spawned.stderr()).toContain('"msg":"shutting down: finishing requests in flight"');
      expect(spawned.stderr()).toContain('"msg":"stopped"');
    }
  });

  it("finishes a rotation in flight on SIGTERM, stores the new key and exits 0", async () => {
    faucet = await startFaucet({
      testClock: false,
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "delay", delayMs: 1500 }],
    });
    const bin = await startBin(faucet);
    const pending = call(bin, "POST", "/v1/rotate", { body: {} });
    const sandbox = faucet.sandbox;
    while ((sandbox.stats().calls.regenerate_operator_key ?? 0) === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    bin.child.kill("SIGTERM");
    const response = await pending;
    expect(response.status).toBe(200);
    const body = (await response.json()) as { fingerprint: string };
    expect(await bin.exit).toBe(0);

    const store = await openCredentialStore({ spec: faucet.dir, env: {} });
    const rekey = createRekey({ store, surface: "library", env: {} });
    try {
      expect((await rekey.status()).fingerprint).toBe(body.fingerprint);
      expect((await rekey.whoami()).type).toBe("operator");
    } finally {
      await rekey.close();
      await store.close();
    }
  });

  it("stores the key of a rotation in flight while 400 idle sockets pile up, under ulimit -n 256", async () => {
    faucet = await startFaucet({
      testClock: false,
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "delay", delayMs: 1500 }],
    });
    const bin = await startBin(faucet, [], {}, 256);
    const rotation = call(bin, "POST", "/v1/rotate", { body: {} });
    // The rotation is at the faucet, its reply delayed: now the idle sockets arrive.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const port = Number(new URL(bin.url).port);
    const idle: Socket[] = [];
    try {
      for (let index = 0; index < 400; index++) {
        const socket = connect(port, "127.0.0.1");
        socket.on("error", () => {});
        socket.resume();
        idle.push(socket);
      }
      const answer = await rotation;
      const body = (await answer.json()) as { fingerprint?: string; code?: string };
      expect(answer.status, JSON.stringify(body)).toBe(200);
      expect(faucet.sandbox.stats().rotations).toBe(1);
      // The new key was stored, and it is the one the faucet now accepts.
      const store = await openCredentialStore({ spec: faucet.dir, env: {} });
      try {
        const rekey = createRekey({ store, surface: "library", env: {} });
        expect((await rekey.status()).fingerprint).toBe(body.fingerprint);
        expect((await rekey.whoami()).fingerprint).toBe(body.fingerprint);
        await rekey.close();
      } finally {
        await store.close();
      }
    } finally {
      for (const socket of idle) socket.destroy();
    }
  });

  it("reads tokens from --tokens-file and warns when bound beyond loopback without TLS", async () => {
    faucet = await startFaucet({ testClock: false });
    const tokensFile = `${faucet.dir}/tokens.json`;
    await writeFile(tokensFile, JSON.stringify([monitor.config]), { mode: 0o600 });
    const bin = await startBin(faucet, ["--tokens-file", tokensFile, "--host", "0.0.0.0"], {
      REKEY_HTTP_TOKENS: "",
    });
    expect(bin.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const port = new URL(bin.url).port;
    const status = await fetch(`http://127.0.0.1:${port}/v1/status`, {
      headers: { authorization: `Bearer ${monitor.raw}` },
    });
    expect(status.status).toBe(200);
    const denied = await fetch(`http://127.0.0.1:${port}/v1/status`, {
      headers: { authorization: `Bearer ${deploy.raw}` },
    });
    expect(denied.status).toBe(401);
    expect(bin.stderr()).toContain("without TLS");
  });

  it("serves HTTPS with --tls-cert and --tls-key, without the clear-text warning", async () => {
    faucet = await startFaucet({ testClock: false });
    const cert = `${faucet.dir}/cert.pem`;
    const key = `${faucet.dir}/key.pem`;
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
    const bin = await startBin(faucet, ["--tls-cert", cert, "--tls-key", key]);
    expect(bin.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = await readFile(cert);
    const answer = await new Promise<{ status: number | undefined; body: string }>(
      (resolve, reject) => {
        httpsGet(
          `${bin.url}/v1/status`,
          { ca, headers: { authorization: `Bearer ${monitor.raw}` } },
          (response) => {
            let body = "";
            response.on("data", (chunk: Buffer) => {
              body += chunk.toString("utf8");
            });
            response.on("end", () => resolve({ status: response.statusCode, body }));
          },
        ).on("error", reject);
      },
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ fingerprint: faucet.operatorFingerprint });
    expect(bin.stderr()).not.toContain("without TLS");
  });

  it("--as serves an agent created with `rekey agents create`, on the record its operator sees", async () => {
    faucet = await startFaucet({ testClock: false });
    const store = await openCredentialStore({ spec: faucet.dir, env: {} });
    const operator = createRekey({ store, surface: "library", env: {} });
    const { agentId } = await operator.createAgent({ name: "service" });
    const bin = await startBin(faucet, ["--as", `agent:${agentId}`]);
    const status = await call(bin, "GET", "/v1/status", { token: monitor.raw });
    expect(await status.json()).toMatchObject({ principal: { kind: "agent", agent_id: agentId } });
    const rotated = await call(bin, "POST", "/v1/rotate", { body: {} });
    expect(rotated.status).toBe(200);
    const { fingerprint: rotatedTo } = (await rotated.json()) as { fingerprint: string };
    const seen = await operator.status({ kind: "agent", agentId });
    expect(seen.fingerprint).toBe(rotatedTo);
    expect(seen.cooldownRemainingSeconds).toBeGreaterThan(25 * 60);
    await operator.close();
    await store.close();
    expect(await stopBin(bin)).toBe(0);
  });

  it("--as a principal the store holds no key for: every route says so (404 NOT_FOUND), none answers as the operator", async () => {
    faucet = await startFaucet({ testClock: false });
    const store = await openCredentialStore({ spec: faucet.dir, env: {} });
    const operator = createRekey({ store, surface: "library", env: {} });
    const { agentId } = await operator.createAgent({ name: "service" });
    await operator.close();
    await store.close();
    const stranger = agentId + 1;
    const bin = await startBin(faucet, ["--as", `agent:${stranger}`]);
    for (const [method, path, token, body] of [
      ["GET", "/v1/status", monitor.raw, undefined],
      ["GET", `/v1/status?agent_id=${agentId}`, monitor.raw, undefined],
      ["GET", "/v1/agents", monitor.raw, undefined],
      ["GET", "/v1/keys/current", reader.raw, undefined],
      ["GET", `/v1/keys/current?agent_id=${agentId}`, reader.raw, undefined],
      ["POST", "/v1/rotate", deploy.raw, {}],
      ["POST", "/v1/rotate", deploy.raw, { agent_id: agentId }],
    ] as const) {
      const response = await call(bin, method, path, { token, body });
      expect(response.status, `${method} ${path}`).toBe(404);
      const problem = (await response.json()) as { code: string; detail: string };
      expect(problem.code, `${method} ${path}`).toBe("NOT_FOUND");
      expect(problem.detail, `${method} ${path}`).toMatch(
        new RegExp(`^The store holds no key for agent ${stranger} on http://127\\.0\\.0\\.1:`),
      );
    }
    expect(await stopBin(bin)).toBe(0);
  });

  it("keeps serving after `rekey store rekey-master --new-key generate` in another process", async () => {
    faucet = await startFaucet({ testClock: false });
    const bin = await startBin(faucet);
    expect((await call(bin, "GET", "/v1/status", { token: monitor.raw })).status).toBe(200);
    expect((await call(bin, "GET", "/v1/keys/current", { token: reader.raw })).status).toBe(200);

    const other = await openCredentialStore({ spec: faucet.dir, env: {} });
    try {
      await rekeyMaster(other, "generate", "cli");
    } finally {
      await other.close();
    }

    const status = await call(bin, "GET", "/v1/status", { token: monitor.raw });
    expect(status.status, await status.clone().text()).toBe(200);
    expect(await status.json()).toMatchObject({ fingerprint: faucet.operatorFingerprint });
    expect((await call(bin, "GET", "/v1/keys/current", { token: reader.raw })).status).toBe(200);
    const rotated = await call(bin, "POST", "/v1/rotate", { body: {} });
    expect(rotated.status, await rotated.clone().text()).toBe(200);
    const { fingerprint: rotatedTo } = (await rotated.json()) as { fingerprint: string };
    expect(await stopBin(bin)).toBe(0);

    // What it stored opens with the store's master.key alone, as a new process opens it.
    const fresh = await openCredentialStore({ spec: faucet.dir, env: {} });
    try {
      const rekey = createRekey({ store: fresh, surface: "library", env: {} });
      expect((await rekey.status()).fingerprint).toBe(rotatedTo);
      await rekey.close();
    } finally {
      await fresh.close();
    }
  });

  it("refuses to start without tokens, with a message and exit code 2", async () => {
    faucet = await startFaucet({ testClock: false });
    const spawned = spawnBin(["--port", "0"], { REKEY_STORE: faucet.dir });
    expect(await spawned.exit).toBe(2);
    expect(spawned.stdout()).toBe("");
    expect(spawned.stderr()).toContain("CONFIG_INVALID: No bearer tokens configured");
  });

  it("refuses a --notify-secret-file other users can read, naming the file and chmod 600", async () => {
    faucet = await startFaucet({ testClock: false });
    const secretFile = `${faucet.dir}/notify-secret`;
    await writeFile(secretFile, `${randomBytes(32).toString("hex")}\n`);
    await chmod(secretFile, 0o644);
    const args = ["--port", "0", "--scheduler", "--notify-url", "http://127.0.0.1:9/rekey"];
    const spawned = spawnBin([...args, "--notify-secret-file", secretFile], {
      REKEY_STORE: faucet.dir,
      REKEY_HTTP_TOKENS: TOKENS,
    });
    expect(await spawned.exit).toBe(2);
    expect(spawned.stdout()).toBe("");
    expect(spawned.stderr()).toContain(
      `CONFIG_INVALID: Refusing --notify-secret-file ${secretFile}: it has mode 644`,
    );
    expect(spawned.stderr()).toContain(`chmod 600 ${secretFile}`);

    await chmod(secretFile, 0o600);
    const bin = await startBin(faucet, [...args, "--notify-secret-file", secretFile]);
    expect((await call(bin, "GET", "/v1/status", { token: monitor.raw })).status).toBe(200);
    expect(await stopBin(bin)).toBe(0);
  });

  it("hashes a token from stdin for the configuration", async () => {
    const spawned = spawnBin(["hash-token"], {});
    spawned.child.stdin?.end("my-secret-token\n");
    expect(await spawned.exit).toBe(0);
    expect(spawned.stdout()).toBe(`${hashToken("my-secret-token")}\n`);
  });
});

const postgresUrl = inject("postgresUrl");

// Replicas behind a load balancer: two servers on one PostgreSQL store, with nothing shared
// on disk. The Idempotency-Key record and the new key reach every replica through the store.
describe.skipIf(postgresUrl === "")("rekey-http replicas on one PostgreSQL store", () => {
  const schema = `rekey_http_${randomBytes(6).toString("hex")}`;
  const storeUrl = `${postgresUrl}?schema=${schema}`;
  afterAll(() => dropPostgresSchema(postgresUrl, schema));

  it("answer 40 requests with one Idempotency-Key, spread over both, with one rotation", async () => {
    faucet = await startFaucet({ testClock: false });
    const store = createPostgresStore({ url: storeUrl, env: TEST_MASTER_KEY_ENV });
    const rekey = createRekey({ store, surface: "library", baseUrl: faucet.sandbox.url, env: {} });
    const { fingerprint: registered } = await rekey.register({ name: "replicated operator" });
    await rekey.close();
    await store.close();

    const env = { REKEY_STORE: storeUrl, HOME: faucet.dir, ...TEST_MASTER_KEY_ENV };
    const replicas = [await startBin(faucet, [], env), await startBin(faucet, [], env)];
    const ready = await Promise.all(replicas.map((replica) => call(replica, "GET", "/readyz")));
    expect(ready.map((response) => response.status)).toEqual([200, 200]);

    const headers = { "idempotency-key": "fleet-release-7" };
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        call(replicas[index % 2] as RunningBin, "POST", "/v1/rotate", { body: {}, headers }),
      ),
    );
    const bodies = await Promise.all(responses.map((response) => response.text()));
    expect(responses.map((response) => response.status)).toEqual(Array(40).fill(200));
    expect(new Set(bodies).size).toBe(1);
    expect(faucet.sandbox.stats().rotations).toBe(1);
    const rotated = JSON.parse(bodies[0] ?? "{}") as { fingerprint: string };
    expect(rotated.fingerprint).not.toBe(registered);

    // Both replicas now use the new key (status answers from a view at most 100 ms old).
    await new Promise((resolve) => setTimeout(resolve, 150));
    for (const replica of replicas) {
      const status = await call(replica, "GET", "/v1/status");
      expect(await status.json()).toMatchObject({ fingerprint: rotated.fingerprint });
      expect(await stopBin(replica)).toBe(0);
    }
    for (const replica of replicas) expect(replica.stderr()).not.toMatch(/lfr?_[A-Za-z0-9_-]{20,}/);
  });

  // Issue 19: three replicas, bursts of 300 concurrent rotations. Before the lock session and
  // the connection budget, most answered 503 and the server refused connections.
  it("hold bursts of 300 rotations over three replicas: no 5xx, one rotation, connections within budget", async () => {
    faucet = await startFaucet({ testClock: false });
    const fleetSchema = `rekey_fleet_${randomBytes(6).toString("hex")}`;
    // Named, so that the server's count of this fleet's connections leaves other tests out.
    const fleetUrl = `${postgresUrl}?schema=${fleetSchema}&application_name=${fleetSchema}`;
    const replicas: RunningBin[] = [];
    try {
      const store = createPostgresStore({ url: fleetUrl, env: TEST_MASTER_KEY_ENV });
      const rekey = createRekey({
        store,
        surface: "library",
        baseUrl: faucet.sandbox.url,
        env: {},
      });
      await rekey.register({ name: "fleet operator" });
      await rekey.close();
      await store.close();
      const { rows } = await queryPostgres(postgresUrl, "SHOW max_connections");
      expect(Number(rows[0]?.max_connections)).toBeGreaterThanOrEqual(100);

      const env = { REKEY_STORE: fleetUrl, HOME: faucet.dir, ...TEST_MASTER_KEY_ENV };
      const args = ["--rotate-limit", "10000", "--log-level", "error"];
      for (const _ of [1, 2, 3]) replicas.push(await startBin(faucet, args, env));
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const { rows: counted } = await queryPostgres(
            postgresUrl,
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
            [fleetSchema],
          );
          peak = Math.max(peak, (counted[0] as { n: number }).n);
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      })();
      const burst = async (headersOf: (index: number) => Record<string, string>) => {
        const responses = await Promise.all(
          Array.from({ length: 300 }, (_, index) =>
            call(replicas[index % 3] as RunningBin, "POST", "/v1/rotate", {
              body: {},
              headers: headersOf(index),
            }),
          ),
        );
        return Promise.all(
          responses.map(async (response) => ({
            status: response.status,
            body: (await response.json()) as { fingerprint?: string; code?: string },
          })),
        );
      };
      // Reads during a burst are served: they never wait behind the replicas' locks.
      const statusDuring = async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const polls = await Promise.all(
          replicas.map((replica) => call(replica, "GET", "/v1/status")),
        );
        return polls.map((poll) => poll.status);
      };

      // One key, a freshly registered operator: one rotation, one answer for all.
      const [shared, readsDuringShared] = await Promise.all([
        burst(() => ({ "idempotency-key": "release-2026-12-02" })),
        statusDuring(),
      ]);
      expect(shared.map((reply) => reply.status)).toEqual(Array(300).fill(200));
      expect(new Set(shared.map((reply) => reply.body.fingerprint)).size).toBe(1);
      expect(readsDuringShared).toEqual([200, 200, 200]);
      expect(faucet.sandbox.stats().rotations).toBe(1);

      // Distinct keys inside the cooldown that rotation started: each a 409, nothing rotated.
      const [distinct, readsDuringDistinct] = await Promise.all([
        burst((index) => ({ "idempotency-key": `deploy-${index}` })),
        statusDuring(),
      ]);
      expect(distinct.map((reply) => reply.status)).toEqual(Array(300).fill(409));
      expect(new Set(distinct.map((reply) => reply.body.code))).toEqual(
        new Set(["COOLDOWN_ACTIVE"]),
      );
      expect(readsDuringDistinct).toEqual([200, 200, 200]);
      expect(faucet.sandbox.stats().rotations).toBe(1);
      sampling = false;
      await sampler;
      // Three replicas, each within its budget of 5 connections.
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(15);

      // Right after the bursts, the whole history reads, from yet another process.
      const reader = createPostgresStore({ url: fleetUrl, env: TEST_MASTER_KEY_ENV });
      try {
        const history = await reader.readAudit();
        expect(verifyAuditChain(history)).toEqual({ ok: true, count: history.length });
        const rotations = history.filter((entry) => entry.action === "rotate");
        expect(rotations.map((entry) => entry.outcome)).toEqual(["success"]);
      } finally {
        await reader.close();
      }
      for (const replica of replicas) {
        const status = await call(replica, "GET", "/v1/status");
        expect(await status.json()).toMatchObject({ fingerprint: shared[0]?.body.fingerprint });
      }
    } finally {
      // Stopped before the schema is dropped: DROP SCHEMA would wait for their sessions.
      await Promise.all(replicas.map((replica) => stopBin(replica)));
      await dropPostgresSchema(postgresUrl, fleetSchema);
    }
  }, 50_000);
});

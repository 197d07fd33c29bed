/**
 * The web console and its live updates, on rekey-http (`--ui`, its own process, a file store):
 *
 * 1. The principals page with 1000 agents (first render: the HTML of /ui, measured from the
 *    request to the last byte on loopback) against `GET /v1/status` on the same server. Target:
 *    under 200 ms.
 * 2. `/v1/events` fan-out: from a committed rotation (made by this process on the shared store,
 *    as the CLI would) to the event reaching the last of 100 open streams, against the same with
 *    one stream open. The ratio is what fan-out costs.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { agent, createRekey, fingerprint, openCredentialStore } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { compare, spawnServer, summarize } from "./runner.mjs";

const AGENTS = 1000;
/** Agents that exist on the sandbox (rotated by the fan-out part); the rest are store records. */
const REAL_AGENTS = 24;
const STREAMS = 100;
const TOKENS = 5;
const ROTATIONS = 10;
const PAGE_TARGET_MS = 200;

const hash = (token) => createHash("sha256").update(token).digest("hex");

/** Opens an event stream and calls `onRotation(seq)` at each rotation event. */
async function openStream(url, token, onRotation) {
  const controller = new AbortController();
  const response = await fetch(`${url}/v1/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  if (response.status !== 200) throw new Error(`GET /v1/events answered ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let opened;
  const ready = new Promise((resolve) => {
    opened = resolve;
  });
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ done: true }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      opened();
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        if (block.includes("event: rotation")) {
          const data = JSON.parse(/data: (.*)/.exec(block)[1]);
          onRotation(data.seq);
        }
      }
    }
  })();
  await ready;
  return () => controller.abort();
}

export default async function runConsoleBench() {
  const httpBin = fileURLToPath(new URL("../../apps/http/dist/bin.js", import.meta.url));
  if (!existsSync(httpBin)) {
    throw new Error(`${httpBin} is missing: run pnpm --filter @rekey/http build first`);
  }
  const sandbox = await startSandbox({ port: 0 });
  const dir = await mkdtemp(join(tmpdir(), "rekey-console-bench-"));
  const tokens = Array.from({ length: TOKENS }, () => randomBytes(24).toString("base64url"));
  const tokenConfig = JSON.stringify(
    tokens.map((token, index) => ({
      name: `console-${index}`,
      sha256: hash(token),
      scopes: ["status", "rotate"],
    })),
  );
  const store = await openCredentialStore({ spec: dir, env: {} });
  const rekey = createRekey({ store, surface: "cli", baseUrl: sandbox.url, env: {} });
  let http;
  const closers = [];
  try {
    await rekey.register({ name: "bench operator" });
    const real = [];
    for (let index = 0; index < REAL_AGENTS; index += 1) {
      real.push((await rekey.createAgent({ name: `agent-${index}` })).agentId);
    }
    // The other agents as store records (the page reads the store, not the faucet).
    const snapshot = await store.read();
    const data = structuredClone(snapshot.data);
    const template = Object.values(data.principals).find((record) =>
      record.principal.startsWith("agent:"),
    );
    for (let id = 100_000; Object.keys(data.principals).length <= AGENTS; id += 1) {
      const key = `lf_${randomBytes(24).toString("hex")}`;
      data.principals[`${template.faucet}#agent:${id}`] = {
        ...template,
        principal: `agent:${id}`,
        name: `fleet-${id}`,
        key,
        fingerprint: fingerprint(key),
        ...(id % 3 === 0
          ? { cooldownUntil: new Date(Date.now() + 20 * 60_000).toISOString() }
          : {}),
      };
    }
    const written = await store.compareAndSet(snapshot.version, data);
    if (!written.ok) throw new Error("the store changed while the bench filled it");

    http = await spawnServer(process.execPath, [httpBin, "--port", "0", "--ui"], {
      env: { PATH: process.env.PATH, HOME: dir, REKEY_STORE: dir, REKEY_HTTP_TOKENS: tokenConfig },
      stdio: ["ignore", "pipe", "ignore"],
    });
    const login = await fetch(`${http.url}/ui/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: tokens[0] }).toString(),
      redirect: "manual",
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0];
    if (login.status !== 303 || cookie === "") throw new Error(`sign-in answered ${login.status}`);
    const authorization = `Bearer ${tokens[0]}`;
    let pageBytes = 0;
    const page = await compare({
      name: `GET /ui (principals page, ${AGENTS} agents) vs GET /v1/status`,
      baseline: async () => {
        const response = await fetch(`${http.url}/v1/status`, { headers: { authorization } });
        await response.text();
      },
      subject: async () => {
        const response = await fetch(`${http.url}/ui`, { headers: { cookie } });
        const text = await response.text();
        if (!text.includes(`fleet-${100_000}`)) throw new Error("the page lacks the fleet");
        pageBytes = Buffer.byteLength(text);
      },
      warmup: 3,
      runs: 21,
    });
    // What crosses the wire: the page gzipped (fetch would undo it before we could count).
    const wireBytes = await new Promise((resolve, reject) => {
      get(`${http.url}/ui`, { headers: { cookie, "accept-encoding": "gzip" } }, (response) => {
        let total = 0;
        response.on("data", (chunk) => {
          total += chunk.length;
        });
        response.on("end", () => resolve(total));
      }).on("error", reject);
    });
    console.log(
      `principals page, ${AGENTS} agents: ${(pageBytes / 1024).toFixed(0)} KiB of HTML, ${(wireBytes / 1024).toFixed(0)} KiB gzipped, median ${page.subject.median.toFixed(1)} ms: ${page.subject.median < PAGE_TARGET_MS ? "meets" : "MISSES"} the ${PAGE_TARGET_MS} ms target`,
    );

    // Fan-out. Each rotation's delay to every stream, from the moment rotateKey resolved.
    const fanOut = async (streams, agents) => {
      const arrivals = new Map();
      for (let index = 0; index < streams; index += 1) {
        closers.push(
          await openStream(http.url, tokens[index % TOKENS], (seq) => {
            const list = arrivals.get(seq) ?? [];
            list.push(performance.now());
            arrivals.set(seq, list);
          }),
        );
      }
      const lastArrival = [];
      for (const agentId of agents) {
        await rekey.rotateKey({ target: agent(agentId) });
        const done = performance.now();
        const seq = (await store.readAudit()).at(-1).seq;
        const deadline = Date.now() + 10_000;
        while ((arrivals.get(seq)?.length ?? 0) < streams) {
          if (Date.now() > deadline) throw new Error(`rotation ${seq} reached only some streams`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        lastArrival.push(Math.max(...arrivals.get(seq)) - done);
      }
      for (const close of closers.splice(0)) close();
      // Let the server see the streams close before the next part opens its own.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return summarize(lastArrival);
    };
    const one = await fanOut(1, real.slice(0, ROTATIONS));
    const hundred = await fanOut(STREAMS, real.slice(ROTATIONS, 2 * ROTATIONS));
    const result = {
      name: `/v1/events: rotation to the last of ${STREAMS} streams vs to 1 stream`,
      baseline: one,
      subject: hundred,
      ratio: hundred.median / one.median,
    };
    console.log(
      `${result.name}: 1 stream p50 ${one.median.toFixed(1)} ms (max ${one.max.toFixed(1)}), ${STREAMS} streams p50 ${hundred.median.toFixed(1)} ms (max ${hundred.max.toFixed(1)}), ratio ${result.ratio.toFixed(2)}x`,
    );
    return [page, result];
  } finally {
    for (const close of closers) close();
    await http?.stop();
    await rekey.close();
    await store.close();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runConsoleBench();

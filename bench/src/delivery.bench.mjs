/**
 * How fast a committed rotation reaches what uses the key, against the rotation itself, in one
 * run, on the file store and on PostgreSQL (LISTEN/NOTIFY):
 * (a) another process's key provider (fixtures/key-watcher.mjs) hands out the new key;
 * (b) a `rekey run` child (the built CLI) is restarted with the new key in its environment;
 * (c) a `lightning-wallet` delivery target (credentials.json) holds the new key.
 * Each is timed from the moment the new key is committed to the store (the engine's
 * `key-stored` step) to the moment it is seen (epoch ms with sub-millisecond precision in every
 * process), and printed against the median duration of the rotation itself (start of
 * `rotateKey` to its commit). Targets: file store ≤ 200 ms, PostgreSQL ≤ 50 ms to (a).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAllDispatchers, createFileStore, createRekey } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { createPostgresStore } from "@rekey/store-postgres";
import {
  findPostgresBin,
  startTemporaryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { summarize } from "./runner.mjs";

const ROTATIONS = 15;
const CLI = new URL("../../apps/cli/dist/rekey.cjs", import.meta.url).pathname;
const WATCHER = new URL("./fixtures/key-watcher.mjs", import.meta.url).pathname;
const now = () => performance.timeOrigin + performance.now();

/** Spawns a process that prints JSON lines `{fingerprint, at}`; collects them by fingerprint. */
function startReporter(command, args, env) {
  const seen = new Map();
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "inherit"],
  });
  let buffered = "";
  let signalReady;
  const ready = new Promise((resolve) => {
    signalReady = resolve;
  });
  child.stdout.on("data", (chunk) => {
    buffered += chunk.toString();
    for (let end = buffered.indexOf("\n"); end !== -1; end = buffered.indexOf("\n")) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (line === "ready") signalReady();
      else if (line.startsWith("{")) {
        const { fingerprint, at } = JSON.parse(line);
        if (!seen.has(fingerprint)) seen.set(fingerprint, at);
        signalReady();
      }
    }
  });
  return { child, ready, seen };
}

async function waitFor(check, what) {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

// The `rekey run` child: prints the fingerprint of the key it was started with, then idles.
const RUN_CHILD = [
  "-e",
  'const c=require("crypto");const k=process.env.LIGHTNING_WALLET_API_KEY||"";' +
    'console.log(JSON.stringify({fingerprint:"fp:"+c.createHash("sha256").update(k).digest("hex").slice(0,12),at:performance.timeOrigin+performance.now()}));' +
    "setInterval(()=>{},1e6)",
];

async function measure(kind, store, spec, sandbox, dir) {
  const commits = new Map();
  const deliveries = new Map();
  let rotationStart = 0;
  const rotations = [];
  const rekey = createRekey({
    store,
    surface: "library",
    baseUrl: sandbox.url,
    env: {},
    hooks: {
      afterStep(step) {
        if (step === "key-stored") rotations.push(now() - rotationStart);
        if (step === "key-stored") commits.set("last", now());
        if (step === "delivery-written") deliveries.set("last", now());
      },
    },
  });
  await rekey.register({ name: kind });
  await rekey.addDeliveryTarget({
    kind: "lightning-wallet",
    path: join(dir, `lw-${kind}`, "credentials.json"),
  });
  // A PostgreSQL store needs its master key in every process; a file store has its own.
  const keyEnv = spec.startsWith("postgres") ? TEST_MASTER_KEY_ENV : {};
  const watcher = startReporter(process.execPath, [WATCHER, spec], keyEnv);
  const runner = startReporter(
    process.execPath,
    [CLI, "--quiet", "run", "--", process.execPath, ...RUN_CHILD],
    {
      REKEY_STORE: spec,
      REKEY_API_URL: sandbox.url,
      ...keyEnv,
    },
  );
  await watcher.ready;
  await runner.ready;
  const latency = { provider: [], run: [], file: [] };
  try {
    for (let round = 0; round < ROTATIONS + 2; round++) {
      rotationStart = now();
      const result = await rekey.rotateKey({ force: true });
      const committed = commits.get("last");
      const delivered = deliveries.get("last");
      const fp = result.newFingerprint;
      await waitFor(() => watcher.seen.has(fp) && runner.seen.has(fp), `${kind} ${fp}`);
      // The first two rounds warm up every process.
      if (round < 2) continue;
      latency.provider.push(watcher.seen.get(fp) - committed);
      latency.run.push(runner.seen.get(fp) - committed);
      latency.file.push(delivered - committed);
    }
  } finally {
    watcher.child.stdin.end();
    runner.child.kill("SIGTERM");
    await rekey.close();
  }
  const rotation = summarize(rotations.slice(2));
  const line = (name, samples) => {
    const stats = summarize(samples);
    console.log(
      `  ${kind.padEnd(8)} ${name.padEnd(34)} p50 ${stats.p50.toFixed(1).padStart(7)} ms  p99 ${stats.p99.toFixed(1).padStart(7)} ms  ratio ${(stats.p50 / rotation.p50).toFixed(2)}x the rotation`,
    );
    return stats;
  };
  console.log(
    `  ${kind.padEnd(8)} ${"rotation itself (start to commit)".padEnd(34)} p50 ${rotation.p50.toFixed(1).padStart(7)} ms  p99 ${rotation.p99.toFixed(1).padStart(7)} ms`,
  );
  return {
    rotation,
    provider: line("(a) key provider, another process", latency.provider),
    run: line("(b) rekey run child restarted", latency.run),
    file: line("(c) lightning-wallet file written", latency.file),
  };
}

export default async function deliveryBench() {
  const sandbox = await startSandbox({});
  const dir = await mkdtemp(join(tmpdir(), "rekey-bench-delivery-"));
  const results = {};
  console.log(
    `commit -> seen, ${ROTATIONS} rotations per store (targets: file <= 200 ms, PostgreSQL <= 50 ms to (a))`,
  );
  const server =
    findPostgresBin() === undefined ? undefined : await startTemporaryPostgres({ durable: true });
  try {
    const fileDir = join(dir, "store");
    const fileStore = createFileStore({ dir: fileDir, env: {} });
    try {
      results.file = await measure("file", fileStore, fileDir, sandbox, dir);
    } finally {
      await fileStore.close();
    }
    if (server === undefined) {
      console.log("  postgres skipped: no PostgreSQL server programs (initdb) on this machine");
    } else {
      const pgStore = createPostgresStore({ url: server.url, env: TEST_MASTER_KEY_ENV });
      try {
        results.postgres = await measure("postgres", pgStore, server.url, sandbox, dir);
      } finally {
        await pgStore.close();
      }
    }
  } finally {
    await closeAllDispatchers();
    await sandbox.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await deliveryBench();

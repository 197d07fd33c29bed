/**
 * A fleet under a burst: three `rekey-http` replicas on one store take 300 concurrent
 * `POST /v1/rotate` (spread evenly), three times: 300 distinct `Idempotency-Key`s on a freshly
 * registered operator (one upstream rotation, shared by the requests that waited for it; later
 * ones meet its cooldown, 409), then one key with `force` (one more rotation, one answer for
 * all), then 300 distinct keys inside the cooldown (409 each, nothing rotated). Baseline: the file store, three processes on
 * one directory; subject: the PostgreSQL store, three processes on one schema. Prints p50/p99
 * latency per burst, the answers by status, and for PostgreSQL the most connections the fleet
 * held (pg_stat_activity, sampled every 20 ms). Target: no 5xx, and the PostgreSQL fleet within
 * replicas x its connection budget (3 x 5).
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { createRekey, openCredentialStore } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import {
  findPostgresBin,
  queryPostgres,
  startTemporaryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { spawnServer, summarize } from "./runner.mjs";

const REPLICAS = 3;
const BURST = 300;
const BUDGET = 5;

const formatMs = (ms) => `${ms.toFixed(0)}ms`;

/** Sends one burst; returns each answer's status and latency. */
async function burst(urls, token, headersOf, body) {
  return Promise.all(
    Array.from({ length: BURST }, async (_, index) => {
      const started = performance.now();
      const response = await fetch(`${urls[index % urls.length]}/v1/rotate`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          ...headersOf(index),
        },
        body: JSON.stringify(body),
      });
      await response.arrayBuffer();
      return { status: response.status, ms: performance.now() - started };
    }),
  );
}

function describeBurst(label, answers) {
  const stats = summarize(answers.map((answer) => answer.ms));
  const byStatus = {};
  for (const { status } of answers) byStatus[status] = (byStatus[status] ?? 0) + 1;
  const statuses = Object.entries(byStatus)
    .map(([status, count]) => `${count}x${status}`)
    .join(" ");
  console.log(
    `  ${label.padEnd(34)} p50 ${formatMs(stats.p50).padStart(7)}  p99 ${formatMs(stats.p99).padStart(7)}  max ${formatMs(stats.max).padStart(7)}  ${statuses}`,
  );
  return { stats, byStatus };
}

/** Starts a fleet on `spec`, runs both bursts, stops it. `countConnections` samples the server. */
async function runFleet(name, spec, sandbox, countConnections) {
  const token = randomBytes(24).toString("base64url");
  const tokens = JSON.stringify([
    {
      name: "bench",
      sha256: createHash("sha256").update(token).digest("hex"),
      scopes: ["status", "rotate"],
    },
  ]);
  // PostgreSQL needs a master key; a file store makes its own, which the replicas find.
  const keyEnv = spec.startsWith("postgres") ? TEST_MASTER_KEY_ENV : {};
  const store = await openCredentialStore({ spec, env: keyEnv, urlStores: postgresUrlStores });
  const rekey = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });
  await rekey.register({ name: `${name} fleet` });
  await rekey.close();
  await store.close();
  const httpBin = fileURLToPath(new URL("../../apps/http/dist/bin.js", import.meta.url));
  const home = await mkdtemp(join(tmpdir(), "rekey-fleet-home-"));
  const replicas = await Promise.all(
    Array.from({ length: REPLICAS }, () =>
      spawnServer(
        process.execPath,
        [httpBin, "--port", "0", "--rotate-limit", "100000", "--log-level", "error"],
        {
          env: {
            PATH: process.env.PATH ?? "",
            HOME: home,
            REKEY_STORE: spec,
            REKEY_HTTP_TOKENS: tokens,
            ...keyEnv,
          },
        },
      ),
    ),
  );
  let peak = 0;
  let sampling = countConnections !== undefined;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await countConnections());
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const rotationsBefore = sandbox.stats().rotations;
  try {
    const urls = replicas.map((replica) => replica.url);
    console.log(`${name}: ${REPLICAS} replicas, ${BURST} concurrent rotations per burst`);
    const fresh = describeBurst(
      "distinct keys, fresh operator",
      await burst(urls, token, (index) => ({ "idempotency-key": `first-${index}` }), {}),
    );
    const shared = describeBurst(
      "one key, force",
      await burst(urls, token, () => ({ "idempotency-key": "release-1" }), { force: true }),
    );
    const distinct = describeBurst(
      "distinct keys, in the cooldown",
      await burst(urls, token, (index) => ({ "idempotency-key": `deploy-${index}` }), {}),
    );
    sampling = false;
    await sampler;
    const rotations = sandbox.stats().rotations - rotationsBefore;
    console.log(
      `  upstream rotations: ${rotations}${countConnections ? `; peak connections: ${peak} (budget ${REPLICAS} x ${BUDGET})` : ""}`,
    );
    return { fresh, shared, distinct, peak, rotations };
  } finally {
    sampling = false;
    await sampler;
    await Promise.all(replicas.map((replica) => replica.stop()));
    await rm(home, { recursive: true, force: true });
  }
}

export default async function runFleetBench() {
  if (!existsSync(fileURLToPath(new URL("../../apps/http/dist/bin.js", import.meta.url)))) {
    throw new Error("apps/http/dist/bin.js is missing: run pnpm build first");
  }
  if (findPostgresBin() === undefined && !process.env.REKEY_BENCH_PG_URL) {
    console.log("skipped: no PostgreSQL (install its server programs or set REKEY_BENCH_PG_URL)");
    return;
  }
  const sandbox = await startSandbox({ port: 0 });
  const dir = await mkdtemp(join(tmpdir(), "rekey-fleet-"));
  const server = process.env.REKEY_BENCH_PG_URL
    ? undefined
    : await startTemporaryPostgres({ durable: true });
  const postgresUrl = process.env.REKEY_BENCH_PG_URL ?? server.url;
  try {
    const file = await runFleet("file store", dir, sandbox);
    const schema = `rekey_fleet_${randomBytes(4).toString("hex")}`;
    const spec = `${postgresUrl}?schema=${schema}&connections=${BUDGET}&application_name=${schema}`;
    const countConnections = async () => {
      const { rows } = await queryPostgres(
        postgresUrl,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
        [schema],
      );
      return rows[0].n;
    };
    const postgres = await runFleet("postgres store", spec, sandbox, countConnections);
    for (const burstName of ["fresh", "shared", "distinct"]) {
      const ratio = postgres[burstName].stats.p50 / file[burstName].stats.p50;
      console.log(`  ${burstName} p50, postgres / file: ${ratio.toFixed(2)}x`);
    }
    const fiveHundreds = [file, postgres].flatMap((fleet) =>
      [fleet.fresh, fleet.shared, fleet.distinct].flatMap((each) =>
        Object.keys(each.byStatus).filter((status) => Number(status) >= 500),
      ),
    );
    if (fiveHundreds.length > 0) throw new Error(`5xx answers: ${fiveHundreds.join(", ")}`);
    if (postgres.peak > REPLICAS * BUDGET) {
      throw new Error(`the fleet held ${postgres.peak} connections, over ${REPLICAS * BUDGET}`);
    }
  } finally {
    await server?.stop();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}

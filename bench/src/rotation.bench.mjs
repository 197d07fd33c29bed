/**
 * A rotation end to end through the engine (journal, upstream call, durable store, verify with
 * whoami, audit) against one raw `regenerate_operator_key` request to the same sandbox, p50 and
 * p99: on the file store (fsync) and, when this machine has PostgreSQL's programs, on a
 * throwaway durable PostgreSQL server. Before the times, what one rotation asks of each store:
 * reads, compare-and-set writes, fsyncs (file store) and locks.
 * Targets (issue 13): file store p50 <= 3x, p99 <= 5x; PostgreSQL p50 <= 4x.
 */
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
import { CountingStore, countFsyncs } from "./counting-store.mjs";
import { compare } from "./runner.mjs";

const COUNTED_ROTATIONS = 20;

const sandbox = await startSandbox({});
const dir = await mkdtemp(join(tmpdir(), "rekey-bench-rotation-"));
const cleanups = [];

async function post(body) {
  const response = await fetch(sandbox.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const reply = await response.json();
  if (!reply.success) throw new Error(`${body.action} failed: ${reply.code}`);
  return reply;
}

/** An engine on `store`, registered, and its rotation (forced past the cooldown it restarts). */
async function engineOn(store, name) {
  const counting = new CountingStore(store);
  const rekey = createRekey({ store: counting, surface: "library", baseUrl: sandbox.url, env: {} });
  cleanups.push(
    () => rekey.close(),
    () => store.close(),
  );
  await rekey.register({ name });
  return { rekey, counting, rotate: () => rekey.rotateKey({ force: true }) };
}

/** Prints what one rotation asks of the store, averaged over a few. */
async function printCounts(kind, engine) {
  await engine.rotate();
  engine.counting.reset();
  const fsyncs = await countFsyncs(async () => {
    for (let round = 0; round < COUNTED_ROTATIONS; round += 1) await engine.rotate();
  });
  const per = (count) => (count / COUNTED_ROTATIONS).toFixed(1);
  const { reads, writes, locks, auditAppends } = engine.counting.counts;
  // A PostgreSQL store's fsyncs are the server's: this process makes none.
  const synced = kind === "file" ? `, ${per(fsyncs)} fsyncs` : "";
  console.log(
    `${kind} store, per rotation: ${per(reads)} reads, ${per(writes)} writes, ` +
      `${per(auditAppends)} audit appends${synced}, ${per(locks)} locks`,
  );
}

/** Prints the p50 and p99 ratios of a comparison against its targets. */
function printRatios(result, targets) {
  const p50 = result.subject.p50 / result.baseline.p50;
  const p99 = result.subject.p99 / result.baseline.p99;
  const target = (value, limit) =>
    limit === undefined ? "" : ` (target <= ${limit}x${value <= limit ? ", met" : ""})`;
  console.log(
    `  ratios vs raw: p50 ${p50.toFixed(2)}x${target(p50, targets.p50)}, ` +
      `p99 ${p99.toFixed(2)}x${target(p99, targets.p99)}`,
  );
}

try {
  let rawKey = (await post({ action: "register", name: "raw" })).api_key;
  const raw = async () => {
    rawKey = (await post({ action: "regenerate_operator_key", api_key: rawKey })).api_key;
  };

  const file = await engineOn(createFileStore({ dir, env: {} }), "bench");
  await printCounts("file", file);
  const fileResult = await compare({
    name: "rotation end to end (file store, fsync, verify) vs one raw regenerate_operator_key",
    baseline: raw,
    subject: file.rotate,
    warmup: 5,
    runs: 61,
    percentiles: true,
  });
  printRatios(fileResult, { p50: 3, p99: 5 });

  if (findPostgresBin() === undefined) {
    console.log("PostgreSQL line skipped: no PostgreSQL server programs (initdb) on this machine");
  } else {
    const server = await startTemporaryPostgres({ durable: true });
    cleanups.push(() => server.stop());
    const postgres = await engineOn(
      createPostgresStore({ url: server.url, env: TEST_MASTER_KEY_ENV }),
      "bench-pg",
    );
    await printCounts("PostgreSQL", postgres);
    const postgresResult = await compare({
      name: "rotation end to end (PostgreSQL store, fsync on, verify) vs one raw regenerate_operator_key",
      baseline: raw,
      subject: postgres.rotate,
      warmup: 5,
      runs: 61,
      percentiles: true,
    });
    printRatios(postgresResult, { p50: 4 });
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await closeAllDispatchers();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
}

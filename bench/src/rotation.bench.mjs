/**
 * A rotation end to end through the engine (journal, upstream call, durable store, verify with
 * whoami, audit) against one raw `regenerate_operator_key` request to the same sandbox, p50 and
 * p99: on the file store (fsync) and, when this machine has PostgreSQL's programs, on a
 * throwaway durable PostgreSQL server. Before the times, what one rotation asks of each store:
 * reads, compare-and-set writes, fsyncs (file store) and locks.
 * Targets (issue 13): file store p50 <= 3x, p99 <= 5x; PostgreSQL p50 <= 4x.
 *
 * In the same rounds it times the design's floor: the raw call plus two durable writes of the
 * store's size (the journal before the call, the key after; `whoami` can overlap the second,
 * the audit and the journal's clearing need not be waited for durably on their own). For the
 * file store a plain atomic write (temp file, write, fsync, rename, directory fsync) of as many
 * bytes as its credentials file; for PostgreSQL an autocommitted upsert of a row as long as the
 * principal's, on its own connection to the same server (a WAL flush and a round trip each).
 * It prints rotation/raw, floor/raw and rotation/floor: the last says what the engine and the
 * store add beyond what the disk and the faucet cost.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, open, rename, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
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
import { summarize } from "./runner.mjs";

const COUNTED_ROTATIONS = 20;
const WARMUP = 5;
const RUNS = 61;

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
  // Milliseconds from the rotation's start (or the step before) to each step the engine
  // reports, for the rotations printCounts makes: where the time goes, step by step.
  const steps = { on: false, last: 0, times: {} };
  const afterStep = (step) => {
    const now = performance.now();
    if (steps.on) {
      steps.times[step] ??= [];
      steps.times[step].push(now - steps.last);
    }
    steps.last = now;
  };
  const rekey = createRekey({
    store: counting,
    surface: "library",
    baseUrl: sandbox.url,
    env: {},
    hooks: { afterStep },
  });
  cleanups.push(
    () => rekey.close(),
    () => store.close(),
  );
  await rekey.register({ name });
  return { rekey, counting, steps, rotate: () => rekey.rotateKey({ force: true }) };
}

/**
 * Counts the statements node-postgres sends while `work` runs (each is one round trip: the
 * client sends a statement only once the one before was answered). `pg` undefined: none.
 */
async function countStatements(pg, work) {
  if (pg === undefined) {
    await work();
    return 0;
  }
  const query = pg.Client.prototype.query;
  let count = 0;
  pg.Client.prototype.query = function (...args) {
    count += 1;
    return query.apply(this, args);
  };
  try {
    await work();
  } finally {
    pg.Client.prototype.query = query;
  }
  return count;
}

/** Prints what one rotation asks of the store, averaged over a few. */
async function printCounts(kind, engine, pg) {
  await engine.rotate();
  engine.counting.reset();
  engine.steps.on = true;
  let statements = 0;
  const fsyncs = await countFsyncs(async () => {
    statements = await countStatements(pg, async () => {
      for (let round = 0; round < COUNTED_ROTATIONS; round += 1) {
        engine.steps.last = performance.now();
        await engine.rotate();
      }
    });
  });
  engine.steps.on = false;
  const per = (count) => (count / COUNTED_ROTATIONS).toFixed(1);
  const { reads, writes, locks, auditAppends } = engine.counting.counts;
  // A PostgreSQL store's fsyncs are the server's: this process makes none. Its statements
  // include those of the lock session.
  const synced = kind === "file" ? `, ${per(fsyncs)} fsyncs` : `, ${per(statements)} statements`;
  console.log(
    `${kind} store, per rotation: ${per(reads)} reads, ${per(writes)} writes, ` +
      `${per(auditAppends)} audit appends${synced}, ${per(locks)} locks`,
  );
  const median = (values) => summarize(values).median.toFixed(2);
  console.log(
    `  ms to each step, median: ${Object.entries(engine.steps.times)
      .map(([step, times]) => `${step} ${median(times)}`)
      .join(", ")}`,
  );
}

/**
 * Times the raw call, the floor and the rotation in the same rounds, each round in another of
 * the three orders (drift weighs on all alike), and prints p50/p99 of each and the ratios.
 */
async function compareThree(name, { raw, floor, rotation }, targets) {
  const tasks = { raw, floor, rotation };
  const orders = [
    ["raw", "floor", "rotation"],
    ["rotation", "raw", "floor"],
    ["floor", "rotation", "raw"],
  ];
  const samples = { raw: [], floor: [], rotation: [] };
  for (let round = 0; round < WARMUP + RUNS; round += 1) {
    for (const key of orders[round % orders.length]) {
      const start = performance.now();
      await tasks[key]();
      if (round >= WARMUP) samples[key].push(performance.now() - start);
    }
  }
  const stats = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)]));
  const ms = (value) => `${value.toFixed(2)}ms`;
  console.log(
    `${name}: rotation p50 ${ms(stats.rotation.p50)} p99 ${ms(stats.rotation.p99)} | ` +
      `floor p50 ${ms(stats.floor.p50)} p99 ${ms(stats.floor.p99)} | ` +
      `raw p50 ${ms(stats.raw.p50)} p99 ${ms(stats.raw.p99)} (${RUNS} runs each)`,
  );
  const ratio = (over, under, which) => stats[over][which] / stats[under][which];
  const target = (value, limit) =>
    limit === undefined ? "" : ` (target <= ${limit}x${value <= limit ? ", met" : ""})`;
  const p50 = ratio("rotation", "raw", "p50");
  const p99 = ratio("rotation", "raw", "p99");
  console.log(
    `  rotation/raw: p50 ${p50.toFixed(2)}x${target(p50, targets.p50)}, ` +
      `p99 ${p99.toFixed(2)}x${target(p99, targets.p99)}`,
  );
  for (const [over, under] of [
    ["floor", "raw"],
    ["rotation", "floor"],
  ]) {
    console.log(
      `  ${over}/${under}: p50 ${ratio(over, under, "p50").toFixed(2)}x, ` +
        `p99 ${ratio(over, under, "p99").toFixed(2)}x`,
    );
  }
  return stats;
}

/** A durable atomic write of `bytes` into `dir`, as the file store's write primitive does it. */
async function atomicWrite(dir, bytes) {
  const target = join(dir, "floor.json");
  const temp = join(dir, `.floor.json.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, target);
  const directory = await open(dir, "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

try {
  let rawKey = (await post({ action: "register", name: "raw" })).api_key;
  const raw = async () => {
    rawKey = (await post({ action: "regenerate_operator_key", api_key: rawKey })).api_key;
  };

  const file = await engineOn(createFileStore({ dir, env: {} }), "bench");
  await printCounts("file", file);
  // The floor writes beside the store (same filesystem), as many bytes as its file holds.
  const floorDir = await mkdtemp(join(dir, "floor-"));
  const fileBytes = randomBytes((await stat(join(dir, "credentials.json"))).size);
  await compareThree(
    "rotation end to end (file store, fsync, verify) / floor / one raw regenerate_operator_key",
    {
      raw,
      floor: async () => {
        await atomicWrite(floorDir, fileBytes);
        await raw();
        await atomicWrite(floorDir, fileBytes);
      },
      rotation: file.rotate,
    },
    { p50: 3, p99: 5 },
  );

  if (findPostgresBin() === undefined) {
    console.log("PostgreSQL line skipped: no PostgreSQL server programs (initdb) on this machine");
  } else {
    const server = await startTemporaryPostgres({ durable: true });
    cleanups.push(() => server.stop());
    const postgres = await engineOn(
      createPostgresStore({ url: server.url, env: TEST_MASTER_KEY_ENV }),
      "bench-pg",
    );
    // pg is store-postgres's dependency, not the bench's: the floor's own connection.
    const pg = createRequire(import.meta.resolve("@rekey/store-postgres"))("pg");
    await printCounts("PostgreSQL", postgres, pg);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    cleanups.push(() => client.end());
    const { rows } = await client.query(
      "SELECT max(octet_length(data::text)) AS size FROM rekey.principals",
    );
    const row = "x".repeat(Number(rows[0].size));
    await client.query("CREATE TABLE bench_floor (id int PRIMARY KEY, data text)");
    const upsert = () =>
      client.query(
        "INSERT INTO bench_floor VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET data = $1",
        [row],
      );
    await compareThree(
      "rotation end to end (PostgreSQL store, fsync on, verify) / floor / one raw regenerate_operator_key",
      {
        raw,
        floor: async () => {
          await upsert();
          await raw();
          await upsert();
        },
        rotation: postgres.rotate,
      },
      { p50: 4 },
    );
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await closeAllDispatchers();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
}

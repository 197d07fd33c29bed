/**
 * The scheduler's cost per tick when nothing is due (issue "Rotation on a schedule": target
 * under 1% of one core at the default 60 s interval), with 1000 agents that each have a policy
 * (max-age 30d, window Mon-Fri 02:00-04:00 Europe/Berlin, jitter 20m), on the file store and
 * on PostgreSQL. Baseline: the strict store read a tick must do anyway; subject: a whole
 * leader tick (read, 1000 due states, the ended-cooldown scan). Also prints the CPU time of
 * a tick (process.cpuUsage over 200 ticks) and what that is as a share of one core per 60 s.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  closeAllDispatchers,
  createFileStore,
  createRekey,
  createScheduler,
  setRotationPolicy,
} from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { createPostgresStore } from "@rekey/store-postgres";
import {
  findPostgresBin,
  startTemporaryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { addPlaceholderAgents } from "./placeholder-agents.mjs";
import { compare } from "./runner.mjs";

const FLEET = 1000;
const INTERVAL_MS = 60_000;
const CPU_TICKS = 200;

/** An operator with FLEET stored agents (placeholder keys, never used) and a policy on each. */
async function seed(store, sandbox) {
  const rekey = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });
  const { operatorId } = await rekey.register({ name: "scheduled fleet" });
  await addPlaceholderAgents(store, sandbox.url, operatorId, FLEET);
  await setRotationPolicy(
    { store, profileName: "default", baseUrl: sandbox.url, clock: { now: Date.now } },
    { kind: "all-agents" },
    { maxAge: "30d", window: "Mon-Fri 02:00-04:00 Europe/Berlin", jitter: "20m" },
  );
  const scheduler = createScheduler({ rekey, store, clock: { now: Date.now } });
  const first = await scheduler.tick();
  if (!first.leader || first.report.results.length !== FLEET) throw new Error("bad seed");
  if (first.report.results.some((outcome) => outcome.result !== "not_due")) {
    throw new Error("something is due: the bench measures the idle tick");
  }
  return { rekey, scheduler };
}

async function cpuPerTick(scheduler) {
  const before = process.cpuUsage();
  for (let tick = 0; tick < CPU_TICKS; tick += 1) await scheduler.tick();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / CPU_TICKS;
}

async function measure(kind, store, sandbox) {
  const { rekey, scheduler } = await seed(store, sandbox);
  try {
    const result = await compare({
      name: `scheduler tick, ${FLEET} principals with a policy, nothing due (${kind} store)`,
      baseline: () => store.read(),
      subject: () => scheduler.tick(),
      runs: 51,
    });
    const cpuMs = await cpuPerTick(scheduler);
    const share = (cpuMs / INTERVAL_MS) * 100;
    console.log(
      `  CPU per tick ${cpuMs.toFixed(2)} ms = ${share.toFixed(3)}% of one core at a ${INTERVAL_MS / 1000} s interval (target < 1%)`,
    );
    return { ...result, cpuMsPerTick: cpuMs, coreShare: share };
  } finally {
    await scheduler.stop();
    await rekey.close();
    await store.close();
  }
}

export default async function schedulerBench() {
  const sandbox = await startSandbox({});
  const dir = await mkdtemp(join(tmpdir(), "rekey-bench-scheduler-"));
  const results = {};
  try {
    results.file = await measure("file", createFileStore({ dir, env: {} }), sandbox);
    if (findPostgresBin() === undefined) {
      console.log(
        "PostgreSQL part skipped: no PostgreSQL server programs (initdb) on this machine",
      );
    } else {
      const server = await startTemporaryPostgres({});
      try {
        results.postgres = await measure(
          "PostgreSQL",
          createPostgresStore({ url: server.url, env: TEST_MASTER_KEY_ENV }),
          sandbox,
        );
      } finally {
        await server.stop();
      }
    }
  } finally {
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
    await closeAllDispatchers();
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await schedulerBench();

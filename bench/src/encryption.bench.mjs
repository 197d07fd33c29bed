/**
 * Keys sealed at rest (issue "Keys encrypted at rest") against the same store writing them in
 * clear, in one run (target: within 1.1x), for the file store and for PostgreSQL: one agent's
 * rotation and a `status`, in a store of 1000 agents; and a cold `status` from a new handle,
 * which reads the whole store (sealed, its keys stay sealed: a read opens a key only when
 * something reads it): the worst case of a read after another process wrote. PostgreSQL runs
 * on a throwaway server on loopback, started from this machine's PostgreSQL programs; without
 * them that part is skipped, with a message.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agent, closeAllDispatchers, createFileStore, createRekey } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { createPostgresStore } from "@rekey/store-postgres";
import {
  dropPostgresSchema,
  findPostgresBin,
  startTemporaryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { addPlaceholderAgents } from "./placeholder-agents.mjs";
import { compare } from "./runner.mjs";

const FLEET = 1000;

/**
 * A store of one operator, one real agent and FLEET - 1 placeholder agents, opened by
 * `openStore()` (a new handle each call, on the same data).
 */
async function fleetStore(sandbox, openStore, cleanup) {
  const store = openStore();
  cleanup.push(() => store.close());
  const rekey = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });
  cleanup.push(() => rekey.close());
  const { operatorId } = await rekey.register({ name: "fleet" });
  const { agentId } = await rekey.createAgent({ name: "rotated" });
  await addPlaceholderAgents(store, sandbox.url, operatorId, FLEET - 1);
  return {
    rotate: () => rekey.rotateKey({ target: agent(agentId), force: true }),
    status: () => rekey.status(),
    coldStatus: async () => {
      const fresh = openStore();
      const viewer = createRekey({
        store: fresh,
        surface: "library",
        baseUrl: sandbox.url,
        env: {},
      });
      await viewer.status();
      await viewer.close();
      await fresh.close();
    },
  };
}

async function compareAll(kind, clear, sealed) {
  for (const [what, runs] of [
    ["rotate", 31],
    ["status", 201],
    ["coldStatus", 31],
  ]) {
    await compare({
      name: `${kind}, ${FLEET} agents: ${what} with keys sealed vs in clear`,
      baseline: clear[what],
      subject: sealed[what],
      warmup: 3,
      runs,
      percentiles: true,
    });
  }
}

async function fileStores(sandbox, cleanup) {
  const stores = {};
  for (const sealKeys of [false, true]) {
    const dir = await mkdtemp(join(tmpdir(), `rekey-bench-encryption-${sealKeys}-`));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    stores[sealKeys ? "sealed" : "clear"] = await fleetStore(
      sandbox,
      () => createFileStore({ dir, env: {}, sealKeys }),
      cleanup,
    );
  }
  await compareAll("file store", stores.clear, stores.sealed);
}

async function postgresStores(sandbox, cleanup) {
  if (findPostgresBin() === undefined) {
    console.log(
      "PostgreSQL: skipped: no PostgreSQL server programs (initdb) on this machine (set REKEY_PG_BIN)",
    );
    return;
  }
  const server = await startTemporaryPostgres({});
  cleanup.push(() => server.stop());
  const stores = {};
  for (const sealKeys of [false, true]) {
    const schema = `bench_${sealKeys ? "sealed" : "clear"}_${randomUUID().slice(0, 8)}`;
    cleanup.push(() =>
      dropPostgresSchema(server.url, schema, { allowClearKeys: !sealKeys }).catch(() => {}),
    );
    stores[sealKeys ? "sealed" : "clear"] = await fleetStore(
      sandbox,
      () => createPostgresStore({ url: server.url, schema, env: TEST_MASTER_KEY_ENV, sealKeys }),
      cleanup,
    );
  }
  await compareAll("PostgreSQL store", stores.clear, stores.sealed);
}

export default async function encryptionBench() {
  const sandbox = await startSandbox({});
  const cleanup = [];
  try {
    await fileStores(sandbox, cleanup);
    await postgresStores(sandbox, cleanup);
  } finally {
    for (const step of cleanup.reverse()) await step();
    await closeAllDispatchers();
    await sandbox.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await encryptionBench();

/**
 * The PostgreSQL store against the file store (the default), through the engine, in one run:
 * a rotation end to end (both durable: the file store fsyncs, the server runs with fsync on),
 * strict status reads (one round trip to the server against one stat), and status reads with
 * `maxAgeMs: 100` (what rekey-http's `GET /v1/status` passes). The server is a throwaway one on
 * loopback, started from this machine's PostgreSQL programs; without them this is skipped.
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
import { compare } from "./runner.mjs";

export default async function postgresBench() {
  if (findPostgresBin() === undefined) {
    console.log("skipped: no PostgreSQL server programs (initdb) on this machine");
    return;
  }
  const server = await startTemporaryPostgres({ durable: true });
  const sandbox = await startSandbox({});
  const dir = await mkdtemp(join(tmpdir(), "rekey-bench-postgres-"));
  const stores = {
    file: createFileStore({ dir, env: {} }),
    postgres: createPostgresStore({ url: server.url, env: TEST_MASTER_KEY_ENV }),
  };
  const engines = {};
  try {
    for (const [kind, store] of Object.entries(stores)) {
      engines[kind] = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });
      await engines[kind].register({ name: kind });
    }
    const statusBatch = (rekey, size, options) => async () => {
      for (let call = 0; call < size; call += 1) await rekey.status(undefined, options);
    };
    await compare({
      name: "rotation end to end, PostgreSQL store vs file store",
      baseline: () => engines.file.rotateKey({ force: true }),
      subject: () => engines.postgres.rotateKey({ force: true }),
      warmup: 5,
      runs: 41,
      percentiles: true,
    });
    await compare({
      name: "status() x100, PostgreSQL store vs file store",
      baseline: statusBatch(engines.file, 100),
      subject: statusBatch(engines.postgres, 100),
      warmup: 3,
      runs: 21,
    });
    await compare({
      name: "status({ maxAgeMs: 100 }) x1000, PostgreSQL store vs file store",
      baseline: statusBatch(engines.file, 1000, { maxAgeMs: 100 }),
      subject: statusBatch(engines.postgres, 1000, { maxAgeMs: 100 }),
      warmup: 3,
      runs: 21,
    });
  } finally {
    for (const engine of Object.values(engines)) await engine.close();
    for (const store of Object.values(stores)) await store.close();
    await closeAllDispatchers();
    await sandbox.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

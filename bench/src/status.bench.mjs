/**
 * `rekey.status()` on the file store against the same call on the memory store, in batches of
 * 1000: what reading credentials.json costs per call once its parse is cached (one stat), and
 * with `maxAgeMs: 100` (what rekey-http's `GET /v1/status` passes: the stat at most every
 * 100 ms).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAllDispatchers, createFileStore, createMemoryStore, createRekey } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { compare } from "./runner.mjs";

const BATCH = 1000;
const sandbox = await startSandbox({});
const dir = await mkdtemp(join(tmpdir(), "rekey-bench-status-"));
const stores = { file: createFileStore({ dir, env: {} }), memory: createMemoryStore() };
const engines = {};
for (const [kind, store] of Object.entries(stores)) {
  engines[kind] = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });
  await engines[kind].register({ name: kind });
}
const batch = (rekey, options) => async () => {
  for (let call = 0; call < BATCH; call += 1) await rekey.status(undefined, options);
};

try {
  await compare({
    name: `status() x${BATCH}, file store vs memory store`,
    baseline: batch(engines.memory),
    subject: batch(engines.file),
    warmup: 3,
    runs: 21,
  });
  await compare({
    name: `status({ maxAgeMs: 100 }) x${BATCH}, file store vs memory store`,
    baseline: batch(engines.memory),
    subject: batch(engines.file, { maxAgeMs: 100 }),
    warmup: 3,
    runs: 21,
  });
} finally {
  for (const engine of Object.values(engines)) await engine.close();
  for (const store of Object.values(stores)) await store.close();
  await closeAllDispatchers();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
}

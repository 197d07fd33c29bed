/**
 * A rotation end to end through the engine (file store with fsync, journal, verify with whoami,
 * audit) against one raw `regenerate_operator_key` request to the same sandbox, p50 and p99.
 * The ratio is the price of never losing a key: durable writes and a verification round trip.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAllDispatchers, createFileStore, createRekey } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { compare } from "./runner.mjs";

const sandbox = await startSandbox({});
const dir = await mkdtemp(join(tmpdir(), "rekey-bench-rotation-"));
const store = createFileStore({ dir, env: {} });
const rekey = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });

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

try {
  await rekey.register({ name: "bench" });
  let rawKey = (await post({ action: "register", name: "raw" })).api_key;

  await compare({
    name: "rotation end to end (file store, fsync, verify) vs one raw regenerate_operator_key",
    baseline: async () => {
      rawKey = (await post({ action: "regenerate_operator_key", api_key: rawKey })).api_key;
    },
    // Each rotation restarts the cooldown, so the benchmark forces past it deliberately.
    subject: () => rekey.rotateKey({ force: true }),
    warmup: 5,
    runs: 61,
    percentiles: true,
  });
} finally {
  await rekey.close();
  await store.close();
  await closeAllDispatchers();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
}

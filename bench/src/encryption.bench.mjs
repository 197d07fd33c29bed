/**
 * Keys sealed at rest (issue "Keys encrypted at rest") against the same file store writing
 * them in clear, in one run (target: within 1.1x): one agent's rotation and a `status`, in a
 * store of 1000 agents; and a cold `status` from a new handle, which parses (and, sealed,
 * decrypts) the whole store: the worst case of a read after another process wrote.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agent, closeAllDispatchers, createFileStore, createRekey } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { addPlaceholderAgents } from "./placeholder-agents.mjs";
import { compare } from "./runner.mjs";

const FLEET = 1000;

/** A store of one operator, one real agent and FLEET - 1 placeholder agents. */
async function fleetStore(sandbox, sealKeys, cleanup) {
  const dir = await mkdtemp(join(tmpdir(), `rekey-bench-encryption-${sealKeys}-`));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const store = createFileStore({ dir, env: {}, sealKeys });
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
      const fresh = createFileStore({ dir, env: {}, sealKeys });
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

export default async function encryptionBench() {
  const sandbox = await startSandbox({});
  const cleanup = [];
  try {
    const clear = await fleetStore(sandbox, false, cleanup);
    const sealed = await fleetStore(sandbox, true, cleanup);
    for (const [what, runs] of [
      ["rotate", 31],
      ["status", 201],
      ["coldStatus", 31],
    ]) {
      await compare({
        name: `file store, ${FLEET} agents: ${what} with keys sealed vs in clear`,
        baseline: clear[what],
        subject: sealed[what],
        warmup: 3,
        runs,
        percentiles: true,
      });
    }
  } finally {
    for (const step of cleanup.reverse()) await step();
    await closeAllDispatchers();
    await sandbox.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await encryptionBench();

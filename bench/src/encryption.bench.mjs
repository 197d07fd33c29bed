/**
 * Keys sealed at rest (issue "Keys encrypted at rest") against the same file store writing
 * them in clear, in one run (target: within 1.1x): one agent's rotation and a `status`, in a
 * store of 1000 agents; and a cold `status` from a new handle, which parses (and, sealed,
 * decrypts) the whole store: the worst case of a read after another process wrote.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agent, closeAllDispatchers, createFileStore, createRekey, faucetIdOf } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
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
  const snapshot = await store.read();
  const data = structuredClone(snapshot.data);
  const faucet = faucetIdOf(sandbox.url);
  for (let index = 0; index < FLEET - 1; index += 1) {
    const principal = `agent:${1_000_000 + index}`;
    data.principals[`${faucet}#${principal}`] = {
      faucet,
      principal,
      name: `placeholder ${index}`,
      operatorId,
      key: `lf_placeholder_${index}_${"x".repeat(32)}`,
      fingerprint: "fp:000000000000",
      savedAt: new Date().toISOString(),
      source: "create",
    };
  }
  if (!(await store.compareAndSet(snapshot.version, data)).ok) throw new Error("seed failed");
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

import { faucetIdOf } from "@rekey/core";

/**
 * Files `count` placeholder agents of `operatorId` in `store` in one write: stored records whose
 * keys are never used, so a bench measures a store that holds a fleet without creating one
 * upstream. Ids start at 1,000,000, clear of the sandbox's real agents.
 */
export async function addPlaceholderAgents(store, baseUrl, operatorId, count) {
  const snapshot = await store.read();
  const data = structuredClone(snapshot.data);
  const faucet = faucetIdOf(baseUrl);
  for (let index = 0; index < count; index += 1) {
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
  const written = await store.compareAndSet(snapshot.version, data);
  if (!written.ok) throw new Error("could not seed the fleet");
}

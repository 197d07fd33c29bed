import type { CredentialStore } from "../store/types.js";

/** The unfinished rotations (journal entries) of every record in the store. */
export async function intentsIn(store: CredentialStore) {
  const { data } = await store.read();
  return Object.values(data.principals).flatMap((record) => (record.intent ? [record.intent] : []));
}

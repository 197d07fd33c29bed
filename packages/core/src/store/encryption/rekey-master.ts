import { RekeyError } from "../../errors.js";
import type { AuditEntry, CredentialStore, Surface } from "../types.js";
import type { MasterKey } from "./master-key.js";

/** What re-keying did. Key-free: key ids only. */
export interface RekeyMasterResult {
  /** The key every record is now sealed under. */
  keyId: string;
  /** The key that sealed new writes before. */
  previousKeyId: string | undefined;
  /** How many records were sealed again (a file store rewrites all in one step). */
  records: number;
  /** Where the new key is kept: a path, or undefined when the caller gave it. */
  keptAt: string | undefined;
}

/** A store whose keys are sealed at rest and can be sealed again under a new master key. */
export interface ResealableStore {
  /**
   * Seals every record again under `newKey` ("generate": a new key the store keeps in its
   * own key file). Both keys open records until it is done; run again after a crash, it goes
   * on where it stopped.
   */
  resealUnder(newKey: MasterKey | "generate"): Promise<Omit<RekeyMasterResult, "audit">>;
}

function isResealable(store: CredentialStore): store is CredentialStore & ResealableStore {
  return typeof (store as Partial<ResealableStore>).resealUnder === "function";
}

/**
 * `rekey store rekey-master`: seals every key of `store` again under a new master key, then
 * records it in the audit log (key ids, never keys).
 *
 * @throws RekeyError CONFIG_INVALID (a store that keeps nothing at rest, or "generate" with a
 *   configured key source); STORE_LOCKED (the current key is missing or wrong); STORE_*.
 */
export async function rekeyMaster(
  store: CredentialStore,
  newKey: MasterKey | "generate",
  surface: Surface,
): Promise<RekeyMasterResult & { audit: AuditEntry }> {
  if (!isResealable(store)) {
    throw new RekeyError("CONFIG_INVALID", `A ${store.kind} store keeps no keys at rest to re-key`);
  }
  const result = await store.resealUnder(newKey);
  const audit = await store.appendAudit({
    at: new Date().toISOString(),
    surface,
    profile: "",
    principal: "store",
    action: "rekey_master",
    outcome: "success",
    ...(result.previousKeyId === undefined
      ? {}
      : { oldFingerprint: `key:${result.previousKeyId}` }),
    newFingerprint: `key:${result.keyId}`,
  });
  return { ...result, audit };
}

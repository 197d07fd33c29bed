import type { StoreData } from "../types.js";

/**
 * Schema 3 seals every key at rest; the document callers read is the same as schema 2's, keys
 * opened. So this step only names the new version: what changes is how a store writes it
 * (each key sealed by `store/encryption/`, under the store's master key). A file store
 * rewrites a schema-2 file on first open, keeping the original sealed beside it; PostgreSQL
 * seals its rows one by one.
 */
export function migrateV2ToV3(v2: Record<string, unknown>): Record<string, unknown> {
  return { ...v2, schemaVersion: 3 satisfies StoreData["schemaVersion"] };
}

/** The public store API of @rekey/core. The contract suite lives in `./testing.ts`, not here. */
export {
  type AuditChainVerdict,
  canonicalJson,
  chainAuditEntry,
  computeAuditHash,
  GENESIS_HASH,
  verifyAuditChain,
} from "./audit-chain.js";
export {
  AUDIT_FILE,
  CREDENTIALS_FILE,
  createFileStore,
  FileStore,
  type FileStoreOptions,
  resolveStoreDir,
  type StoreDirEnv,
} from "./file-store.js";
export { deepFreeze } from "./freeze.js";
export { createMemoryStore, MemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export {
  assertWritableAuditEntry,
  assertWritableStoreData,
  auditEntrySchema,
  describeIssues,
  migrateStoreData,
  storeDataSchema,
} from "./schema.js";
export { assertNoPasswordInArgument, storeSpecHasPassword } from "./store-spec.js";
export * from "./types.js";

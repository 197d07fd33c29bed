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
  ClearSealer,
  countClearKeys,
  explicitKeySource,
  formatMasterKey,
  holdsSealedKeys,
  isSealedBackup,
  isSealedKey,
  type KeyRing,
  keyIdOf,
  keysThatDoNotOpen,
  loadConfiguredMasterKey,
  type MasterKey,
  type MasterKeyEnv,
  newStoreId,
  openKey,
  openSealedBackup,
  parseMasterKey,
  type RecordKey,
  RecordSealer,
  type RekeyMasterResult,
  type ResealableStore,
  readKeyFile,
  rekeyMaster,
  SealedKey,
  type SealedKeyOpener,
  sealBackup,
  sealedKeyId,
} from "./encryption/index.js";
export {
  AUDIT_FILE,
  CREDENTIALS_FILE,
  createFileStore,
  FileStore,
  type FileStoreOptions,
  resolveStoreDir,
  type StoreDirEnv,
} from "./file-store.js";
export { deepFreeze, frozenCopy, thawedCopy } from "./freeze.js";
export { createMemoryStore, MemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export {
  faucetIdOf,
  isFiledUnderOwnId,
  RECORD_PRINCIPAL_PATTERN,
  recordIdOf,
} from "./record-ids.js";
export {
  assertWritableAuditEntry,
  assertWritableStoreData,
  auditEntrySchema,
  describeIssues,
  IDEMPOTENCY_SLOT_PATTERN,
  idempotencyRecordSchema,
  migrateStoreData,
  PROFILE_NAME_PATTERN,
  principalRecordSchema,
  profileSchema,
  storeDataSchema,
  storedIdempotencyRecordSchema,
} from "./schema.js";
export { assertNoPasswordInArgument, storeSpecHasPassword } from "./store-spec.js";
export * from "./types.js";

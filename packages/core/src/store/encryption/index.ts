/** Encryption at rest of the keys a store holds: master keys, their sources, sealing. */
export {
  explicitKeySource,
  GENERATED_KEY_FILE,
  loadConfiguredMasterKey,
  loadGeneratedKeyFile,
  type MasterKeyEnv,
  readKeyFile,
} from "./key-sources.js";
export { formatMasterKey, keyIdOf, type MasterKey, parseMasterKey } from "./master-key.js";
export {
  ClearSealer,
  countClearKeys,
  countKeysSealedUnderOthers,
  holdsSealedKeys,
  type KeyRing,
  keysThatDoNotOpen,
  newStoreId,
  RecordSealer,
} from "./record-sealer.js";
export {
  type RekeyMasterResult,
  type ResealableStore,
  rekeyMaster,
} from "./rekey-master.js";
export { isSealedBackup, openSealedBackup, sealBackup } from "./sealed-backup.js";
export {
  isSealedKey,
  openKey,
  type RecordKey,
  SealedKey,
  type SealedKeyOpener,
} from "./sealed-key.js";
export { isSealed, openSecret, sealedKeyId, sealSecret } from "./sealed-secret.js";

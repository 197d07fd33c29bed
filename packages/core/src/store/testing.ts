/**
 * Test helpers for store implementations, re-exported at `@rekey/core/testing`. Imports vitest:
 * keep it out of the main entry point.
 */
export {
  describeStoreContract,
  type StoreContractFixture,
  sampleStoreData,
} from "./contract-suite.js";
export { installSealedKeyEquality, sealedKeyEquals } from "./sealed-key-equality.js";

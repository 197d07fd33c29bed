/**
 * `@rekey/core/testing`: helpers for packages that implement or exercise core's interfaces.
 * Imports vitest; never import it from production code.
 */
export * from "../store/testing.js";
export { intentsIn } from "./journals.js";
export {
  installKeysAtRestScan,
  RAW_KEY,
  reportRawKeyAtRest,
  STORE_FILE,
  storeFilesHoldingRawKeys,
  takeRawKeysAtRest,
} from "./keys-at-rest.js";

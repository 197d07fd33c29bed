/**
 * `@rekey/store-postgres/testing`: a throwaway PostgreSQL server for tests and benchmarks, and
 * a vitest global setup that provides one. Imports vitest types only.
 */

export { TEST_MASTER_KEY_ENV } from "./master-key.js";
export { providePostgres } from "./provide-postgres.js";
export {
  dropPostgresSchema,
  findPostgresBin,
  queryPostgres,
  startTemporaryPostgres,
  type TemporaryPostgres,
} from "./temporary-postgres.js";

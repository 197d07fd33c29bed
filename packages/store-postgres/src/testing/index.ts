/** `@rekey/store-postgres/testing`: a throwaway PostgreSQL server for tests and benchmarks. */
export {
  findPostgresBin,
  startTemporaryPostgres,
  type TemporaryPostgres,
} from "./temporary-postgres.js";

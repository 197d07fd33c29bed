export {
  DEFAULT_SCHEMA,
  isPostgresUrl,
  type PostgresTarget,
  parsePostgresUrl,
  redactPostgresUrl,
} from "./connection.js";
export { createPostgresStore, PostgresStore, type PostgresStoreOptions } from "./postgres-store.js";
export { postgresUrlStores } from "./url-stores.js";

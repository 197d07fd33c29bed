// Gives the replica tests in src/bin.test.ts a PostgreSQL server (throwaway, or REKEY_TEST_PG_URL).
export { providePostgres as default } from "@rekey/store-postgres/testing";

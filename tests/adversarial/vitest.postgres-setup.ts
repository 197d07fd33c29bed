// Gives the suite a PostgreSQL server (a throwaway one, or REKEY_TEST_PG_URL).
export { providePostgres as default } from "@rekey/store-postgres/testing";

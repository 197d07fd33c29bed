import type { UrlStoreOpener } from "@rekey/core";

// Loaded only when a postgres:// store is asked for: `pg` and the store stay out of a
// program's start-up otherwise (an MCP server is spawned per session; a CLI per command).
const openPostgres: UrlStoreOpener = async (url) => {
  const { createPostgresStore } = await import("./postgres-store.js");
  return createPostgresStore({ url });
};

/**
 * Openers for core's `openCredentialStore({ urlStores })`: with them, a store spec of
 * `postgres://...` or `postgresql://...` opens a {@link PostgresStore}. Importing this module
 * loads neither `pg` nor the store.
 */
export const postgresUrlStores: Readonly<Record<string, UrlStoreOpener>> = {
  postgres: openPostgres,
  postgresql: openPostgres,
};

import { RekeyError } from "@rekey/core";
import type { UrlStoreOpener } from "@rekey/core/store-kit";

/**
 * True when loading the store failed because the `pg` package is not installed: an ES module
 * import says ERR_MODULE_NOT_FOUND, a require() (the CLI is one CommonJS bundle) MODULE_NOT_FOUND.
 */
function isPgMissing(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") &&
    typeof message === "string" &&
    /['"]pg['"]/.test(message)
  );
}

// Loaded only when a postgres:// store is asked for: `pg` and the store stay out of a
// program's start-up otherwise (an MCP server is spawned per session; a CLI per command).
// The apps bundle everything but `pg`, an optional peer dependency: a user who asks for a
// PostgreSQL store installs it beside them.
const openPostgres: UrlStoreOpener = async (url, { env }) => {
  let loaded: typeof import("./postgres-store.js");
  try {
    loaded = await import("./postgres-store.js");
  } catch (error) {
    if (!isPgMissing(error)) throw error;
    throw new RekeyError("CONFIG_INVALID", "A postgres:// store needs the pg package", {
      hint: "Install it beside rekey: `npm install -g pg` for a global install, or `npm install pg`.",
      cause: error,
    });
  }
  return loaded.createPostgresStore({ url, env });
};

/**
 * Openers for core's `openCredentialStore({ urlStores })`: with them, a store spec of
 * `postgres://...` or `postgresql://...` opens a {@link PostgresStore}. Importing this module
 * loads neither `pg` nor the store.
 * @throws RekeyError CONFIG_INVALID (from the opener) when the `pg` package is not installed.
 */
export const postgresUrlStores: Readonly<Record<string, UrlStoreOpener>> = {
  postgres: openPostgres,
  postgresql: openPostgres,
};

import { RekeyError } from "@rekey/core";
import { isBusy, parseConnectionBudget, storeBusy } from "./connection-budget.js";

/** Where a PostgreSQL store lives, parsed from its URL. */
export interface PostgresTarget {
  /** What `pg` connects with: the URL without rekey's own `schema` parameter. */
  connectionString: string;
  /** The schema holding rekey's tables. */
  schema: string;
  /** The URL with any password replaced by `***`: safe to show and log. */
  location: string;
  /** The URL's `connections` parameter: the most connections the store opens (see connection-budget.ts). */
  connections?: number;
}

/** Unquoted PostgreSQL identifiers only: the schema name is written into SQL text. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The default schema for rekey's tables. */
export const DEFAULT_SCHEMA = "rekey";

/** Whether `spec` names a PostgreSQL store (a `postgres://` or `postgresql://` URL). */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec.trim());
}

/**
 * Parses a store URL: `postgres://user:password@host:port/database?schema=rekey&connections=5`
 * (rekey's own parameters, both optional), plus any
 * parameter `pg` understands (`sslmode`...). Parts left out come from libpq's environment
 * variables (PGHOST, PGUSER, PGPASSWORD...), so the password need not be in the URL at all.
 *
 * @throws RekeyError CONFIG_INVALID for a URL that does not parse, an unusable schema name or
 *   connection budget;
 *   the message never repeats the URL (it may hold a password).
 */
export function parsePostgresUrl(url: string, schemaOverride?: string): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new RekeyError("CONFIG_INVALID", "The PostgreSQL store URL does not parse", {
      hint: "Use postgres://USER@HOST:PORT/DATABASE; put the password in PGPASSWORD or ~/.pgpass.",
    });
  }
  if (!isPostgresUrl(parsed.href)) {
    throw new RekeyError("CONFIG_INVALID", "A PostgreSQL store URL starts with postgres://");
  }
  const schema = schemaOverride ?? parsed.searchParams.get("schema") ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `The PostgreSQL schema name ${JSON.stringify(schema.slice(0, 80))} is not a plain lower-case identifier`,
      { hint: "Use letters a-z, digits and _, starting with a letter or _ (at most 63)." },
    );
  }
  const connections = parsed.searchParams.get("connections");
  parsed.searchParams.delete("schema");
  parsed.searchParams.delete("connections");
  const connectionString = parsed.href;
  // Where the store is, as users see it: a schema other than the default is part of it (two
  // schemas of one database are two stores: their status, their errors, their rescue files).
  const shown = new URL(connectionString);
  if (schema !== DEFAULT_SCHEMA) shown.searchParams.set("schema", schema);
  return {
    connectionString,
    schema,
    location: redactPostgresUrl(shown.href),
    ...(connections === null ? {} : { connections: parseConnectionBudget(connections) }),
  };
}

/** `url` with its password (in the user part or a `password` parameter) shown as `***`. */
export function redactPostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    if (parsed.searchParams.has("password")) parsed.searchParams.set("password", "***");
    return parsed.href;
  } catch {
    return "postgres://(unparsable URL)";
  }
}

const HINTS: Record<string, string> = {
  // pg opens the files the URL names (sslrootcert, sslcert, sslkey) before connecting.
  ENOENT:
    "A file the store URL names is missing: check sslrootcert, sslcert and sslkey (or the Unix socket directory in host).",
  EACCES:
    "A file the store URL names cannot be read by this user: check sslrootcert, sslcert and sslkey.",
  ECONNREFUSED: "Check that PostgreSQL is running and listening at that host and port.",
  ENOTFOUND: "Check the host name in the store URL.",
  ETIMEDOUT: "PostgreSQL did not answer in time; check the network and the server's load.",
  "28P01": "Check the user and password (in the URL, PGPASSWORD or ~/.pgpass).",
  "28000": "The server refused this user; check pg_hba.conf and the user name.",
  "3D000": "Create the database first, or point the URL at one that exists.",
  "42501":
    "Grant this user USAGE and CREATE on the schema (or have its owner create rekey's tables once).",
  "25006": "This server is read-only (a standby?): point the store URL at the primary.",
  "53300": "The server has no free connections; raise max_connections or use fewer processes.",
};

/** The `code` of a `pg` or network error: a SQLSTATE ("28P01") or an errno ("ECONNREFUSED"). */
export function errorCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * A failure to reach or use the database, as STORE_UNAVAILABLE; as STORE_BUSY when no
 * connection was free (this process's budget or the server's). A RekeyError passes through.
 * The message names the redacted location and the server's own words, which hold no secrets
 * (`pg` never repeats a password).
 */
export function storeUnavailable(action: string, location: string, error: unknown): RekeyError {
  if (error instanceof RekeyError) return error;
  if (isBusy(error)) return storeBusy(action, location, error);
  const code = errorCodeOf(error) ?? "unknown error";
  const reason = error instanceof Error && error.message !== "" ? `: ${error.message}` : "";
  return new RekeyError(
    "STORE_UNAVAILABLE",
    `Cannot ${action} the PostgreSQL store at ${location} (${code}${reason})`,
    { cause: error, details: { location, errno: code }, hint: HINTS[code] },
  );
}

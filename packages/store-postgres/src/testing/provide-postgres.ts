import type {} from "vitest";
import type { TestProject } from "vitest/node";
import { findPostgresBin, startTemporaryPostgres } from "./temporary-postgres.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The server tests use; "" when there is none (such tests then report as skipped). */
    postgresUrl: string;
  }
}

/**
 * A vitest global setup that gives tests a PostgreSQL server as `inject("postgresUrl")`:
 * REKEY_TEST_PG_URL when set, else a throwaway server started from this machine's PostgreSQL
 * programs and stopped at the end. With REKEY_TEST_PG_REQUIRED=1 (CI), having neither is a
 * failure, not a skip.
 */
export async function providePostgres(
  project: TestProject,
): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.REKEY_TEST_PG_URL;
  if (given) {
    project.provide("postgresUrl", given);
    return undefined;
  }
  if (findPostgresBin() === undefined) {
    if (process.env.REKEY_TEST_PG_REQUIRED === "1") {
      throw new Error(
        "REKEY_TEST_PG_REQUIRED=1 but there is no PostgreSQL: install its server programs (initdb) or set REKEY_TEST_PG_URL",
      );
    }
    project.provide("postgresUrl", "");
    return undefined;
  }
  const server = await startTemporaryPostgres();
  project.provide("postgresUrl", server.url);
  return () => server.stop();
}

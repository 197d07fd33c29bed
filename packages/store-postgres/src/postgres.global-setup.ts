import type { TestProject } from "vitest/node";
import { findPostgresBin, startTemporaryPostgres } from "./testing/temporary-postgres.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The server the tests use; "" when there is none (the tests then report as skipped). */
    postgresUrl: string;
  }
}

/**
 * Gives the tests a PostgreSQL server: REKEY_TEST_PG_URL when set, else a throwaway one
 * started from this machine's PostgreSQL programs and stopped at the end. With
 * REKEY_TEST_PG_REQUIRED=1 (CI), having neither is a failure, not a skip.
 */
export default async function setup(project: TestProject) {
  const given = process.env.REKEY_TEST_PG_URL;
  if (given) {
    project.provide("postgresUrl", given);
    return;
  }
  if (findPostgresBin() === undefined) {
    if (process.env.REKEY_TEST_PG_REQUIRED === "1") {
      throw new Error(
        "REKEY_TEST_PG_REQUIRED=1 but there is no PostgreSQL: install postgresql (initdb) or set REKEY_TEST_PG_URL",
      );
    }
    project.provide("postgresUrl", "");
    return;
  }
  const server = await startTemporaryPostgres();
  project.provide("postgresUrl", server.url);
  return () => server.stop();
}

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import type pg from "pg";
import { inject } from "vitest";
import { createPostgresStore, type PostgresStore } from "./postgres-store.js";
import { TEST_MASTER_KEY_ENV } from "./testing/master-key.js";
import { dropPostgresSchema, queryPostgres } from "./testing/temporary-postgres.js";

/** The test server's URL, or "" when this machine has none (see postgres.global-setup.ts). */
export const postgresUrl = inject("postgresUrl");

/** A schema no other test uses: every test gets a store of its own in the one server. */
export function freshSchema(): string {
  return `rekey_test_${randomBytes(6).toString("hex")}`;
}

/** Runs SQL as the server's superuser, outside any store. */
export function adminQuery(text: string, values?: unknown[]): Promise<pg.QueryResult> {
  return queryPostgres(postgresUrl, text, values);
}

export async function dropSchema(schema: string): Promise<void> {
  await dropPostgresSchema(postgresUrl, schema);
}

export function openStore(schema: string, url = postgresUrl): PostgresStore {
  return createPostgresStore({ url, schema, env: TEST_MASTER_KEY_ENV });
}

// The built package: a child is another process, as a second host of a fleet would be.
const HOLD_LOCK = `
  const { createPostgresStore } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});
  const { url, schema, name, leaseMs, env } = JSON.parse(process.argv[1]);
  const store = createPostgresStore({ url, schema, env });
  await store.lock(name, { leaseMs, waitMs: 0 });
  process.stdout.write("locked\\n");
  setInterval(() => {}, 1000);
`;

const children = new Set<ChildProcess>();

/** Starts another process that takes `name` and holds it until it is stopped or killed. */
export async function holdLockInChild(
  schema: string,
  name: string,
  leaseMs: number,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      HOLD_LOCK,
      JSON.stringify({ url: postgresUrl, schema, name, leaseMs, env: TEST_MASTER_KEY_ENV }),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.add(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string | undefined>((resolve) => {
    lines.once("line", resolve);
    child.once("exit", () => resolve(undefined));
  });
  if (first !== "locked") throw new Error(`the lock holder did not take "${name}"`);
  return child;
}

/** Kills every child that holdLockInChild started (SIGKILL also ends a stopped one). */
export function killChildren(): void {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
}

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { RekeyError } from "@rekey/core";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import {
  adminQuery,
  dropSchema,
  freshSchema,
  holdLockInChild,
  killChildren,
  postgresUrl,
} from "./postgres.test-helper.js";
import { createPostgresStore, type PostgresStore } from "./postgres-store.js";
import { TEST_MASTER_KEY_ENV } from "./testing/master-key.js";

/** Connections the server has open for `applicationName` right now. */
async function connectionsOf(applicationName: string): Promise<number> {
  const { rows } = await adminQuery(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
    [applicationName],
  );
  return (rows[0] as { n: number }).n;
}

/** Samples `connectionsOf` until `work` settles; returns its result and the most seen. */
async function peakConnections<T>(applicationName: string, work: Promise<T>) {
  let done = false;
  let peak = 0;
  const sampling = (async () => {
    while (!done) {
      peak = Math.max(peak, await connectionsOf(applicationName));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    return { result: await work, peak: () => peak };
  } finally {
    done = true;
    await sampling;
    peak = Math.max(peak, await connectionsOf(applicationName));
  }
}

describe.skipIf(postgresUrl === "")("PostgreSQL store: connections and locks", () => {
  const stores: PostgresStore[] = [];
  const schemas: string[] = [];
  /** A store on a fresh schema whose connections are named `name` on the server. */
  const open = (
    name: string,
    options: { maxConnections?: number; connectTimeoutMs?: number } = {},
  ) => {
    const schema = freshSchema();
    schemas.push(schema);
    const url = new URL(postgresUrl);
    url.searchParams.set("application_name", name);
    const store = createPostgresStore({
      url: url.href,
      schema,
      env: TEST_MASTER_KEY_ENV,
      ...options,
    });
    stores.push(store);
    return { store, schema };
  };

  afterEach(async () => {
    killChildren();
    for (const store of stores.splice(0)) await store.close();
    for (const schema of schemas.splice(0)) await dropSchema(schema);
  });

  it("serves 100 concurrent holders that each need a second, shared lock, within its budget", async () => {
    // Each caller holds a lock of its own (an Idempotency-Key) and then waits for a shared one
    // (the principal's rotation lock), as withIdempotency around rotateKey does.
    const name = freshSchema();
    const { store } = open(name);
    const { result, peak } = await peakConnections(
      name,
      Promise.allSettled(
        Array.from({ length: 100 }, async (_, index) => {
          const own = await store.lock(`idempotency.${index}`, { leaseMs: 20_000, waitMs: 30_000 });
          const shared = await store.lock("operator", { leaseMs: 20_000, waitMs: 30_000 });
          await store.read();
          await shared.release();
          await own.release();
        }),
      ),
    );
    expect(result.filter((outcome) => outcome.status === "rejected")).toEqual([]);
    expect(peak()).toBeGreaterThan(0);
    expect(peak()).toBeLessThanOrEqual(5);
  });

  it("answers reads and other locks while it waits for a lock another process holds", async () => {
    const name = freshSchema();
    const { store, schema } = open(name);
    const holder = await holdLockInChild(schema, "operator", 600_000);
    const waiters = Array.from({ length: 20 }, () =>
      store.lock("operator", { leaseMs: 20_000, waitMs: 15_000 }),
    );
    const other = await store.lock("agent:7", { leaseMs: 20_000, waitMs: 0 });
    expect((await store.read()).version).toBe(0);
    expect(await store.readAudit()).toEqual([]);
    await other.release();
    holder.kill("SIGKILL");
    // One after another, each waiter gets it.
    for (const waiter of waiters) await (await waiter).release();
    expect(await connectionsOf(name)).toBeLessThanOrEqual(5);
  });

  it("answers STORE_BUSY with a retry time when its budget stays busy, and serves again after", async () => {
    const name = freshSchema();
    // A budget of 3 leaves one data connection; a reader blocked on a table lock holds it.
    const { store, schema } = open(name, { maxConnections: 3, connectTimeoutMs: 300 });
    await store.checkWritable();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      await admin.query("BEGIN");
      await admin.query(`LOCK TABLE "${schema}".store_meta IN ACCESS EXCLUSIVE MODE`);
      const blocked = store.read();
      const busy = await store.read().catch((error: unknown) => error);
      expect(busy).toBeInstanceOf(RekeyError);
      expect(busy).toMatchObject({ code: "STORE_BUSY", details: { retryAfterSeconds: 1 } });
      await admin.query("COMMIT");
      expect((await blocked).version).toBe(0);
      expect((await store.read()).version).toBe(0);
    } finally {
      await admin.end();
    }
  });

  it("lets a script that took and released a lock exit without closing the store", async () => {
    const schema = freshSchema();
    schemas.push(schema);
    // The lock session idles 5 s before it closes; it must not hold the process meanwhile.
    const script = `
      const { createPostgresStore } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});
      const store = createPostgresStore({ url: process.argv[1], schema: process.argv[2], env: ${JSON.stringify(TEST_MASTER_KEY_ENV)} });
      await (await store.lock("operator", { leaseMs: 20000, waitMs: 5000 })).release();
      const released = Date.now();
      process.on("exit", () => process.stdout.write(String(Date.now() - released)));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script, postgresUrl, schema],
      { timeout: 15_000 },
    );
    expect(Number(stdout)).toBeLessThan(2500);
  });

  it("refuses a budget too small to hold a lock session, a LISTEN connection and a data connection", () => {
    expect(() => createPostgresStore({ url: postgresUrl, maxConnections: 2 })).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID" }),
    );
    expect(() => createPostgresStore({ url: `${postgresUrl}?connections=lots` })).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID" }),
    );
  });
});

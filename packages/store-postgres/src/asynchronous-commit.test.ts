import type { AuditEventInput, StoreData } from "@rekey/core";
import { sampleStoreData } from "@rekey/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore, type PostgresStore } from "./postgres-store.js";
import { TEST_MASTER_KEY_ENV } from "./testing/master-key.js";
import {
  findPostgresBin,
  queryPostgres,
  startTemporaryPostgres,
  type TemporaryPostgres,
} from "./testing/temporary-postgres.js";

// Which commits wait for their WAL to reach the disk. A server of its own names a synchronous
// standby that never comes, so a commit that waits for its WAL waits forever (wait event
// SyncRep) and one that does not (synchronous_commit off) returns: no timing involved. The
// default stays `local` (the set-up's commits return); the store's own role waits (`on`).

const OPERATOR = "http://127.0.0.1:8787#operator:1";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function event(requestId: string): AuditEventInput {
  return {
    at: "2025-01-01T00:00:00.000Z",
    surface: "library",
    profile: "default",
    principal: "operator:1",
    action: "rotate",
    outcome: "success",
    oldFingerprint: "fp:0123456789ab",
    newFingerprint: "fp:ba9876543210",
    requestId,
  };
}

/** The sample store, its operator's rotation journaled in `phase`. */
function journaled(phase: "requested" | "stored", name: string): StoreData {
  const data = structuredClone(sampleStoreData(name)) as StoreData;
  const record = data.principals[OPERATOR];
  if (record === undefined) throw new Error("the sample has no operator");
  record.intent = {
    requestId: "req-journaled",
    principal: "operator:1",
    actor: "operator:1",
    oldFingerprint: "fp:0123456789ab",
    startedAt: "2025-01-01T00:00:00.000Z",
    phase,
    surface: "library",
  };
  return data;
}

const bin = findPostgresBin();

describe.skipIf(bin === undefined)("PostgreSQL commits that need not wait for the disk", () => {
  let server: TemporaryPostgres;
  const stores: PostgresStore[] = [];

  beforeAll(async () => {
    server = await startTemporaryPostgres({
      durable: true,
      settings: { synchronous_standby_names: "rekey_no_such_standby", synchronous_commit: "local" },
    });
    await queryPostgres(server.url, "CREATE ROLE waiter LOGIN SUPERUSER");
    await queryPostgres(server.url, "ALTER ROLE waiter SET synchronous_commit = on");
  }, 60_000);

  afterAll(async () => {
    for (const store of stores) await store.close();
    await server?.stop();
  });

  /** How many of the store role's commits wait for their WAL now. */
  async function waiting(): Promise<number> {
    const { rows } = await queryPostgres(
      server.url,
      "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'waiter' AND wait_event = 'SyncRep'",
    );
    return Number(rows[0].n);
  }

  /** Resolves once `count` commits wait for their WAL (rejects after 10 s). */
  async function untilWaiting(count: number): Promise<void> {
    for (let tries = 0; tries < 1000; tries++) {
      if ((await waiting()) >= count) return;
      await sleep(10);
    }
    throw new Error(`never saw ${count} commit(s) waiting for the WAL`);
  }

  /** `work`, failing if it waits for the WAL instead of returning. */
  async function withoutWaiting<T>(work: Promise<T>): Promise<T> {
    const waited = untilWaiting(1).then(() => {
      throw new Error("the commit waited for its WAL to reach the disk");
    });
    waited.catch(() => {});
    return Promise.race([work, waited]);
  }

  it("commits a durable: false write and the audit entry of a rotation its journal holds without waiting; any other write or entry waits", async () => {
    const owner = createPostgresStore({ url: server.url, env: TEST_MASTER_KEY_ENV });
    stores.push(owner);
    expect((await owner.compareAndSet(0, journaled("requested", "set-up"))).ok).toBe(true);
    await owner.appendAudit(event("req-set-up"));
    await owner.close();

    const store = createPostgresStore({
      url: server.url.replace("postgres@", "waiter@"),
      env: TEST_MASTER_KEY_ENV,
    });
    stores.push(store);
    const base = await store.read();
    // The key stored, the journal in phase stored: as a rotation leaves it before its entry.
    const stored = await withoutWaiting(
      store.compareAndSet(base.version, journaled("stored", "stored"), { durable: false }),
    );
    expect(stored.ok).toBe(true);
    expect(await waiting()).toBe(0);
    const entry = await withoutWaiting(store.appendAudit(event("req-journaled")));
    expect(entry.requestId).toBe("req-journaled");

    // An entry of no journaled rotation, and a durable write, wait for their WAL.
    const other = store.appendAudit(event("req-other"));
    await untilWaiting(1);
    const after = stored.ok ? stored.snapshot : base;
    const durable = store.compareAndSet(after.version, journaled("requested", "durable"));
    await untilWaiting(2);
    // Waiting no more (cancelled, the server keeps what they committed locally): both
    // return, written.
    await queryPostgres(
      server.url,
      "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = 'waiter' AND wait_event = 'SyncRep'",
    );
    expect((await other).requestId).toBe("req-other");
    expect((await durable).ok).toBe(true);
    expect((await store.readAudit()).map((written) => written.requestId)).toEqual([
      "req-set-up",
      "req-journaled",
      "req-other",
    ]);
  });
});

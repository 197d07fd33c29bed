import { isRekeyError, type RekeyError, verifyAuditChain } from "@rekey/core";
import { describeStoreContract, sampleStoreData } from "@rekey/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import {
  adminQuery,
  dropSchema,
  freshSchema,
  holdLockInChild,
  killChildren,
  openStore,
  postgresUrl,
} from "./postgres.test-helper.js";
import type { PostgresStore } from "./postgres-store.js";

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isRekeyError(error)) throw new Error(`expected a RekeyError, got ${String(error)}`);
  return error;
}

if (postgresUrl === "") {
  describe("PostgreSQL store", () => {
    it.skip("needs PostgreSQL: its server programs (initdb) on this machine, or REKEY_TEST_PG_URL", () => {});
  });
} else {
  describeStoreContract("postgres", async () => {
    const schema = freshSchema();
    const store = openStore(schema);
    return {
      store,
      openAnother: async () => openStore(schema),
      // A holder in another process that stalls (SIGSTOP) without releasing: its session
      // sits idle past leaseMs and the server ends it, freeing the lock.
      crashLockHolder: async (name, leaseMs) => {
        // The suite checks the lock is still held right after this returns, within leaseMs of
        // the stop: warm the store's lock connection so that check does not wait ~30 ms (more
        // on a loaded machine) to connect.
        await (await store.lock("warm-up", { leaseMs, waitMs: 0 })).release();
        const child = await holdLockInChild(schema, name, leaseMs);
        child.kill("SIGSTOP");
      },
      cleanup: async () => {
        killChildren();
        await dropSchema(schema);
      },
    };
  });

  describe("PostgreSQL store", () => {
    const stores: PostgresStore[] = [];
    const schemas: string[] = [];
    const open = (schema: string, url?: string) => {
      const store = openStore(schema, url);
      stores.push(store);
      return store;
    };
    const newSchema = () => {
      const schema = freshSchema();
      schemas.push(schema);
      return schema;
    };

    afterEach(async () => {
      killChildren();
      for (const store of stores.splice(0)) await store.close();
      for (const schema of schemas.splice(0)) await dropSchema(schema);
    });

    it("frees a lock at once when its holder's process is killed", async () => {
      const schema = newSchema();
      const store = open(schema);
      // A lease far longer than the wait: only the connection's end can free it in time.
      const holder = await holdLockInChild(schema, "operator", 600_000);
      await expect(store.lock("operator", { leaseMs: 600_000, waitMs: 0 })).rejects.toMatchObject({
        code: "ROTATION_IN_PROGRESS",
      });
      holder.kill("SIGKILL");
      const lock = await store.lock("operator", { leaseMs: 600_000, waitMs: 10_000 });
      await lock.release();
    });

    it("keeps a lock while its holder lives past leaseMs", async () => {
      const schema = newSchema();
      const holder = open(schema);
      const lock = await holder.lock("agent:7", { leaseMs: 1500, waitMs: 0 });
      // Three leases long: the keep-alive, not luck, holds it.
      await new Promise((resolve) => setTimeout(resolve, 4500));
      await expect(
        open(schema).lock("agent:7", { leaseMs: 1500, waitMs: 0 }),
      ).rejects.toMatchObject({ code: "ROTATION_IN_PROGRESS" });
      await lock.release();
    });

    it("frees the locks a handle holds when it closes; their release() afterwards is harmless", async () => {
      const schema = newSchema();
      const closing = openStore(schema);
      const held = await closing.lock("operator", { leaseMs: 600_000, waitMs: 0 });
      await closing.close();
      const taken = await open(schema).lock("operator", { leaseMs: 600_000, waitMs: 10_000 });
      await held.release();
      await expect(
        open(schema).lock("operator", { leaseMs: 600_000, waitMs: 0 }),
      ).rejects.toMatchObject({ code: "ROTATION_IN_PROGRESS" });
      await taken.release();
    });

    it("creates its tables once when many handles start on an empty schema at the same time", async () => {
      const schema = newSchema();
      const handles = Array.from({ length: 6 }, () => open(schema));
      const results = await Promise.all(
        handles.map((store, index) => store.compareAndSet(0, sampleStoreData(`writer-${index}`))),
      );
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      const { rows } = await adminQuery(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        [schema],
      );
      expect(rows.map((row) => row.table_name)).toEqual(["audit_log", "credentials"]);
    });

    it("notifies watchers of a write made by any client, even plain SQL", async () => {
      const schema = newSchema();
      const store = open(schema);
      await store.compareAndSet(0, sampleStoreData("one"));
      let calls = 0;
      store.watch(() => {
        calls += 1;
      });
      // Whether LISTEN is up before the write or not, the write is reported once.
      await adminQuery(
        `UPDATE "${schema}".credentials SET version = version + 1, data = $1 WHERE id = 1`,
        [JSON.stringify(sampleStoreData("two"))],
      );
      const deadline = Date.now() + 5000;
      while (calls === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(calls).toBe(1);
      expect(await store.read()).toEqual({ version: 2, data: sampleStoreData("two") });
    });

    it("reports a row that is not a store document as STORE_CORRUPT, and leaves it as it is", async () => {
      const schema = newSchema();
      const store = open(schema);
      await store.checkWritable(); // creates the tables
      const newer = JSON.stringify({ schemaVersion: 99, profiles: {} });
      await adminQuery(
        `INSERT INTO "${schema}".credentials (id, version, data) VALUES (1, 5, $1)`,
        [newer],
      );
      const error = await rejection(store.read());
      expect(error.code).toBe("STORE_CORRUPT");
      expect(error.message).toContain("newer rekey");
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(health.problems.join(" ")).toContain("newer rekey");
      const { rows } = await adminQuery(`SELECT data FROM "${schema}".credentials`);
      expect(rows[0].data).toEqual({ schemaVersion: 99, profiles: {} });
    });

    it("refuses to append after an unreadable audit entry, naming it", async () => {
      const schema = newSchema();
      const store = open(schema);
      await store.checkWritable();
      await adminQuery(`INSERT INTO "${schema}".audit_log (seq, entry) VALUES (1, '{"seq": 1}')`);
      const error = await rejection(
        store.appendAudit({
          at: "2026-01-01T00:00:00.000Z",
          surface: "library",
          profile: "default",
          principal: "operator",
          action: "rotate",
          outcome: "success",
        }),
      );
      expect(error.code).toBe("STORE_CORRUPT");
      expect(error.message).toContain("audit_log");
      const { rows } = await adminQuery(`SELECT count(*)::int AS n FROM "${schema}".audit_log`);
      expect(rows[0].n).toBe(1);
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(health.problems.join(" ")).toContain("the last entry is not an audit entry");
    });

    it("keeps the audit chain verifiable through PostgreSQL's jsonb", async () => {
      const schema = newSchema();
      const store = open(schema);
      for (const principal of ["operator", "agent:7", "agent:12"]) {
        await store.appendAudit({
          at: "2026-01-01T00:00:00.000Z",
          surface: "http",
          profile: "default",
          principal,
          action: "rotate",
          outcome: "success",
          oldFingerprint: "fp:0123456789ab",
          newFingerprint: "fp:ba9876543210",
          cooldownUntil: "2026-01-01T01:00:00.000Z",
        });
      }
      expect(verifyAuditChain(await open(schema).readAudit())).toEqual({ ok: true, count: 3 });
    });

    it("says a user who may only read cannot write, without changing anything", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, sampleStoreData("one"));
      const role = `${schema}_reader`;
      await adminQuery(`CREATE ROLE ${role} LOGIN`);
      try {
        await adminQuery(`GRANT USAGE ON SCHEMA "${schema}" TO ${role}`);
        await adminQuery(`GRANT SELECT ON ALL TABLES IN SCHEMA "${schema}" TO ${role}`);
        const url = new URL(postgresUrl);
        url.username = role;
        const reader = open(schema, url.href);
        expect(await reader.read()).toEqual({ version: 1, data: sampleStoreData("one") });
        const error = await rejection(reader.checkWritable());
        expect(error.code).toBe("STORE_UNAVAILABLE");
        expect(error.details.errno).toBe("42501");
        expect(error.hint).toContain("Grant");
        await reader.close();
      } finally {
        await adminQuery(`DROP OWNED BY ${role}`);
        await adminQuery(`DROP ROLE ${role}`);
      }
      expect((await open(schema).read()).version).toBe(1);
    });

    it("fails with STORE_UNAVAILABLE when the server is unreachable, and never shows the password", async () => {
      const store = open(newSchema(), "postgres://rekey:hunter2-secret@127.0.0.1:1/rekey");
      expect(store.location).toBe("postgres://rekey:***@127.0.0.1:1/rekey");
      const error = await rejection(store.read());
      expect(error.code).toBe("STORE_UNAVAILABLE");
      expect(error.details.errno).toBe("ECONNREFUSED");
      expect(error.hint).toContain("running");
      expect(JSON.stringify(error.toJSON())).not.toContain("hunter2");
      expect(error.message).not.toContain("hunter2");
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(JSON.stringify(health)).not.toContain("hunter2");
    });

    it("refuses a URL that does not parse or a schema that is not a plain identifier", () => {
      expect(() => openStore("x", "postgres://[::1")).toThrow(/does not parse/);
      expect(() => openStore('x"; DROP TABLE users; --')).toThrow(/plain lower-case identifier/);
    });
  });
}

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import {
  isRekeyError,
  parseMasterKey,
  type RekeyError,
  type StoreData,
  verifyAuditChain,
} from "@rekey/core";
import { openSealedBackup } from "@rekey/core/store-kit";
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
import { createPostgresStore, type PostgresStore } from "./postgres-store.js";
import { TEST_MASTER_KEY_ENV } from "./testing/master-key.js";

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
  describeStoreContract(
    "postgres",
    async () => {
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
    },
    { appendsAuditWithWrite: true, readsWithLock: true },
  );

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
      expect(rows.map((row) => row.table_name)).toEqual([
        "audit_log",
        "idempotency",
        "principals",
        "store_meta",
        "store_sealing",
      ]);
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
      const [[id, record]] = Object.entries(sampleStoreData("two").principals) as [
        [string, unknown],
      ];
      await adminQuery(
        `WITH turn AS (UPDATE "${schema}".store_meta SET version = version + 1 WHERE id = 1
           RETURNING version)
         UPDATE "${schema}".principals SET data = $2, version = (SELECT version FROM turn)
         WHERE id = $1`,
        [id, JSON.stringify(record)],
      );
      const deadline = Date.now() + 5000;
      while (calls === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(calls).toBe(1);
      expect(await store.read()).toEqual({ version: 2, data: sampleStoreData("two") });
    });

    it("reads idempotency rows the previous rekey wrote (an HTTP status and body) as outcomes", async () => {
      const schema = newSchema();
      const store = open(schema);
      const [pendingSlot, doneSlot] = ["a".repeat(48), "b".repeat(48)];
      const times = {
        requestHash: "c".repeat(64),
        createdAt: "2026-12-01T00:00:00.000Z",
        expiresAt: "2026-12-02T00:00:00.000Z",
      };
      await store.checkWritable(); // creates the tables
      // The rows as the previous rekey wrote them: 202 and a pendingRequestId while it ran.
      const previous = {
        [pendingSlot]: { ...times, status: 202, body: null, pendingRequestId: "request-1" },
        [doneSlot]: { ...times, status: 200, body: { fingerprint: "fp", rotated: true } },
      };
      await store.compareAndSet(0, sampleStoreData("one"));
      for (const [slot, data] of Object.entries(previous)) {
        await adminQuery(
          `WITH turn AS (UPDATE "${schema}".store_meta SET version = version + 1 WHERE id = 1
             RETURNING version)
           INSERT INTO "${schema}".idempotency (slot, version, data)
           VALUES ($1, (SELECT version FROM turn), $2)`,
          [slot, JSON.stringify(data)],
        );
      }
      const reader = open(schema);
      const read = await reader.read();
      expect(read.data.idempotency).toEqual({
        [pendingSlot]: { ...times, state: "pending", requestId: "request-1" },
        [doneSlot]: { ...times, state: "done", result: { fingerprint: "fp", rotated: true } },
      });
      // The pending one finishing is written in the new shape; the other row is left as it was.
      const next = structuredClone(read.data) as StoreData;
      next.idempotency[pendingSlot] = { ...times, state: "done", result: { fingerprint: "fp2" } };
      expect((await reader.compareAndSet(read.version, next)).ok).toBe(true);
      const { rows } = await adminQuery(
        `SELECT slot, data FROM "${schema}".idempotency ORDER BY slot`,
      );
      expect(rows).toEqual([
        { slot: pendingSlot, data: { ...times, state: "done", result: { fingerprint: "fp2" } } },
        { slot: doneSlot, data: previous[doneSlot] },
      ]);
      expect((await open(schema).read()).data).toEqual(next);
    });

    it("reports a row that is not a store document as STORE_CORRUPT, and leaves it as it is", async () => {
      const schema = newSchema();
      const store = open(schema);
      await store.checkWritable(); // creates the tables
      const newer = JSON.stringify({ schemaVersion: 99, profiles: {} });
      await adminQuery(
        `INSERT INTO "${schema}".store_meta (id, version, meta_version, data) VALUES (1, 5, 5, $1)`,
        [newer],
      );
      const error = await rejection(store.read());
      expect(error.code).toBe("STORE_CORRUPT");
      expect(error.message).toContain("newer rekey");
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(health.problems.join(" ")).toContain("newer rekey");
      const { rows } = await adminQuery(`SELECT data FROM "${schema}".store_meta`);
      expect(rows[0].data).toEqual({ schemaVersion: 99, profiles: {} });
    });

    it("writes only the rows a change touches: two handles change two agents from one read", async () => {
      const schema = newSchema();
      const [first, second] = [open(schema), open(schema)];
      const data = structuredClone(sampleStoreData("fleet")) as StoreData;
      for (const agentId of [7, 8, 9]) {
        data.principals[`http://127.0.0.1:8787#agent:${agentId}`] = {
          faucet: "http://127.0.0.1:8787",
          principal: `agent:${agentId}`,
          operatorId: 1,
          name: `agent ${agentId}`,
        };
      }
      expect((await first.compareAndSet(0, data)).ok).toBe(true);
      const base = await first.read();
      expect((await second.read()).version).toBe(base.version);
      const rename = (id: number, name: string) => {
        const next = structuredClone(base.data) as StoreData;
        const record = next.principals[`http://127.0.0.1:8787#agent:${id}`];
        if (record) record.name = name;
        return next;
      };
      // Both writes start from the same version: neither rewrites nor conflicts with the other.
      expect((await first.compareAndSet(base.version, rename(7, "seven"))).ok).toBe(true);
      expect((await second.compareAndSet(base.version, rename(8, "eight"))).ok).toBe(true);
      const after = await open(schema).read();
      const names = Object.values(after.data.principals).map((record) => record.name);
      expect(names).toEqual(expect.arrayContaining(["seven", "eight", "agent 9"]));
      const { rows } = await adminQuery(
        `SELECT id, version FROM "${schema}".principals ORDER BY id`,
      );
      const versions = Object.fromEntries(rows.map((row) => [row.id, Number(row.version)]));
      expect(versions["http://127.0.0.1:8787#agent:9"]).toBe(1);
      expect(versions["http://127.0.0.1:8787#operator:1"]).toBe(1);
      // The same agent from a stale read is a conflict, as before.
      expect((await second.compareAndSet(base.version, rename(7, "late"))).ok).toBe(false);
    });

    it("migrates a schema-1 store row once, keeping its table as credentials_schema_1", async () => {
      const schema = newSchema();
      const fixture = JSON.parse(
        await readFile(
          fileURLToPath(
            new URL(
              "../../core/src/store/migrations/fixtures/schema-1-two-profiles/credentials.json",
              import.meta.url,
            ),
          ),
          "utf8",
        ).then((text) => text.replaceAll('"sandbox-key:', '"lf_')),
      ) as { version: number; data: unknown };
      // The table as rekey 0.1 made it.
      await adminQuery(`CREATE SCHEMA "${schema}"`);
      await adminQuery(
        `CREATE TABLE "${schema}".credentials (id smallint PRIMARY KEY CHECK (id = 1),
          version bigint NOT NULL CHECK (version > 0), data json NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now())`,
      );
      await adminQuery(
        `INSERT INTO "${schema}".credentials (id, version, data) VALUES (1, $1, $2)`,
        [fixture.version, JSON.stringify(fixture.data)],
      );
      const reads = await Promise.all(Array.from({ length: 4 }, () => open(schema).read()));
      expect(new Set(reads.map((read) => read.version))).toEqual(new Set([fixture.version + 1]));
      const agent = Object.values(reads[0]?.data.principals ?? {}).find(
        (record) => record.principal === "agent:1",
      );
      expect(agent?.alternates).toHaveLength(1);
      expect(reads[0]?.data.profiles.ag).toMatchObject({ actsAs: "agent:1" });
      // Kept, sealed whole: the backup holds every key the store had.
      const { rows } = await adminQuery(
        `SELECT data::text AS text FROM "${schema}".credentials_schema_1`,
      );
      expect(rows[0].text).not.toContain('"lf_');
      const key = parseMasterKey(TEST_MASTER_KEY_ENV.REKEY_MASTER_KEY, "test");
      expect(JSON.parse(openSealedBackup(rows[0].text, [key], "backup"))).toEqual(fixture.data);
    });

    it("seals a store in clear that many handles open at once, each open succeeding", async () => {
      // Every handle's first open seals the rows and creates the migration backup table; two
      // unguarded CREATE TABLE IF NOT EXISTS racing fail one open on PostgreSQL's catalog.
      for (let round = 0; round < 3; round += 1) {
        const schema = newSchema();
        const clear = createPostgresStore({
          url: postgresUrl,
          schema,
          env: TEST_MASTER_KEY_ENV,
          sealKeys: false,
        });
        await clear.compareAndSet(0, sampleStoreData("clear"));
        await clear.close();
        const reads = await Promise.all(Array.from({ length: 8 }, () => open(schema).read()));
        expect(reads.map((read) => read.data)).toEqual(reads.map(() => sampleStoreData("clear")));
        const { rows } = await adminQuery(`SELECT data::text AS text FROM "${schema}".principals`);
        for (const row of rows) expect(row.text).not.toMatch(/"lfr?_/);
      }
    });

    it("reports a principal row that is not a record as STORE_CORRUPT, and leaves it as it is", async () => {
      const schema = newSchema();
      const store = open(schema);
      await store.compareAndSet(0, sampleStoreData("one"));
      await adminQuery(`UPDATE "${schema}".principals SET data = '{"faucet": 7}'::json`);
      const error = await rejection(open(schema).read());
      expect(error.code).toBe("STORE_CORRUPT");
      expect(error.message).toContain("operator:1");
      const { rows } = await adminQuery(`SELECT data FROM "${schema}".principals`);
      expect(rows[0].data).toEqual({ faucet: 7 });
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
      const schema = newSchema();
      const store = open(schema, "postgres://rekey:hunter2-secret@127.0.0.1:1/rekey");
      expect(store.location).toBe(`postgres://rekey:***@127.0.0.1:1/rekey?schema=${schema}`);
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

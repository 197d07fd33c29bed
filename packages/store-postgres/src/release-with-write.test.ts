import { isRekeyError, type StoreData } from "@rekey/core";
import { sampleStoreData } from "@rekey/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import {
  adminQuery,
  dropSchema,
  freshSchema,
  openStore,
  postgresUrl,
} from "./postgres.test-helper.js";
import type { PostgresStore } from "./postgres-store.js";

// A write given `WriteOptions.release` frees the lock in its own round trip, on the lock
// session: `BEGIN; EXECUTE write; COMMIT; SELECT pg_advisory_unlock(...)` (locks.ts). These
// check the unlock waits for the commit, and that a write the server refuses leaves the lock
// held and the session usable. The contract (core's release-with-write-contract.ts) covers
// the rest.

const lease = { leaseMs: 10_000, waitMs: 0 };

function named(name: string): StoreData {
  return sampleStoreData(name) as StoreData;
}

/**
 * A trigger on the schema's principals: `body` runs for each row written, before it is
 * (`at: "write"`) or as the transaction commits (`"commit"`: a deferred constraint trigger).
 */
async function onRowWrite(schema: string, body: string, at: "write" | "commit"): Promise<void> {
  await adminQuery(`CREATE FUNCTION "${schema}".test_hook() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN ${body} RETURN NEW; END $$`);
  await adminQuery(
    at === "write"
      ? `CREATE TRIGGER test_hook BEFORE INSERT OR UPDATE ON "${schema}".principals
          FOR EACH ROW EXECUTE FUNCTION "${schema}".test_hook()`
      : `CREATE CONSTRAINT TRIGGER test_hook AFTER INSERT OR UPDATE ON "${schema}".principals
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "${schema}".test_hook()`,
  );
}

if (postgresUrl === "") {
  describe("PostgreSQL lock freed with a write", () => {
    it.skip("needs PostgreSQL", () => {});
  });
} else {
  describe("PostgreSQL lock freed with a write", () => {
    const stores: PostgresStore[] = [];
    const schemas: string[] = [];
    const open = (schema: string) => {
      const store = openStore(schema);
      stores.push(store);
      return store;
    };
    const newSchema = () => {
      const schema = freshSchema();
      schemas.push(schema);
      return schema;
    };

    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      for (const schema of schemas.splice(0)) await dropSchema(schema);
    });

    it("frees it only once the write committed: a holder waiting meanwhile reads the write", async () => {
      const schema = newSchema();
      const one = open(schema);
      const other = open(schema);
      expect((await one.compareAndSet(0, named("one"))).ok).toBe(true);
      await other.read();
      // The write's commit takes 300 ms on the server: an unlock sent before it, in its
      // transaction, would let the waiter in before the write is visible.
      await onRowWrite(
        schema,
        "IF NEW.data->>'name' = 'slow' THEN PERFORM pg_sleep(0.3); END IF;",
        "commit",
      );
      const lock = await one.lock("agent:7", lease);
      const writing = one.compareAndSet(1, named("slow"), { release: lock, durable: false });
      const waiting = other.lock("agent:7", { leaseMs: 10_000, waitMs: 5_000, read: true });
      expect((await writing).ok).toBe(true);
      const next = await waiting;
      try {
        expect(next.snapshot?.version).toBe(2);
        expect(Object.values(next.snapshot?.data.principals ?? {})[0]?.name).toBe("slow");
      } finally {
        await next.release();
        await lock.release();
      }
    });

    it("writes what it is given as it is: quotes, backslashes and other characters", async () => {
      const schema = newSchema();
      const one = open(schema);
      expect((await one.compareAndSet(0, named("one"))).ok).toBe(true);
      const name = `O'Brien \\ "quoted" \\' é ✓ \n$1 $$ E'x'`;
      const lock = await one.lock("agent:7", lease);
      const written = await one.compareAndSet(1, named(name), { release: lock });
      expect(written.ok).toBe(true);
      await lock.release();
      expect(Object.values((await open(schema).read()).data.principals)[0]?.name).toBe(name);
    });

    it("keeps it held when the server refuses the write, and the lock session serves on", async () => {
      const schema = newSchema();
      const one = open(schema);
      const other = open(schema);
      expect((await one.compareAndSet(0, named("one"))).ok).toBe(true);
      await onRowWrite(
        schema,
        "IF NEW.data->>'name' = 'refused' THEN RAISE EXCEPTION 'refused by a test'; END IF;",
        "write",
      );
      const lock = await one.lock("agent:7", lease);
      const failed = await one.compareAndSet(1, named("refused"), { release: lock }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isRekeyError(failed, "STORE_UNAVAILABLE")).toBe(true);
      const tryOther = () =>
        other.lock("agent:7", lease).then(
          async (taken) => {
            await taken.release();
            return true;
          },
          (error: unknown) => {
            if (isRekeyError(error, "ROTATION_IN_PROGRESS")) return false;
            throw error;
          },
        );
      expect(await tryOther()).toBe(false);
      // The session left no transaction open: another lock of this handle, and a write freeing
      // it, go through.
      const second = await one.lock("agent:8", lease);
      const written = await one.compareAndSet(1, named("two"), { release: second });
      expect(written.ok).toBe(true);
      expect((await other.read()).version).toBe(2);
      expect(await tryOther()).toBe(false);
      await lock.release();
      expect(await tryOther()).toBe(true);
    });
  });
}

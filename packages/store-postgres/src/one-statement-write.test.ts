import type { StoreData } from "@rekey/core";
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

// A compare-and-set write of a few rows is one autocommitted statement (sql.ts,
// oneStatementWrite): these check it is still all or nothing, row by row.

const FAUCET = "http://127.0.0.1:8787";
const agentId = (id: number) => `${FAUCET}#agent:${id}`;

function withAgents(ids: number[]): StoreData {
  const data = structuredClone(sampleStoreData("rows")) as StoreData;
  for (const id of ids) {
    data.principals[agentId(id)] = {
      faucet: FAUCET,
      principal: `agent:${id}`,
      operatorId: 1,
      name: `agent ${id}`,
    };
  }
  return data;
}

function renamed(data: unknown, names: Record<number, string>): StoreData {
  const next = structuredClone(data) as StoreData;
  for (const [id, name] of Object.entries(names)) {
    const record = next.principals[agentId(Number(id))];
    if (record) record.name = name;
  }
  return next;
}

async function rowsOf(schema: string): Promise<Record<string, { version: number; name?: string }>> {
  const { rows } = await adminQuery(
    `SELECT id, version, data->>'name' AS name FROM "${schema}".principals ORDER BY id`,
  );
  return Object.fromEntries(
    rows.map((row) => [row.id, { version: Number(row.version), name: row.name ?? undefined }]),
  );
}

async function storeVersion(schema: string): Promise<number> {
  const { rows } = await adminQuery(`SELECT version FROM "${schema}".store_meta`);
  return Number(rows[0].version);
}

if (postgresUrl === "") {
  describe("PostgreSQL one-statement writes", () => {
    it.skip("needs PostgreSQL", () => {});
  });
} else {
  describe("PostgreSQL one-statement writes", () => {
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

    it("writes none of its rows, nor the version, when one row moved since the read", async () => {
      const schema = newSchema();
      const [first, second] = [open(schema), open(schema)];
      expect((await first.compareAndSet(0, withAgents([7, 8]))).ok).toBe(true);
      const base = await first.read();
      await second.read();
      expect(
        (await second.compareAndSet(base.version, renamed(base.data, { 8: "eight" }))).ok,
      ).toBe(true);
      const before = await rowsOf(schema);
      const version = await storeVersion(schema);
      // Agent 7 is as read, agent 8 is not: the write of both must change neither.
      const result = await first.compareAndSet(
        base.version,
        renamed(base.data, { 7: "seven", 8: "late" }),
      );
      expect(result.ok).toBe(false);
      expect(await rowsOf(schema)).toEqual(before);
      expect(await storeVersion(schema)).toBe(version);
      // The conflict hands back the current document, from which the write succeeds.
      if (result.ok) return;
      const retried = renamed(result.current.data, { 7: "seven" });
      expect((await first.compareAndSet(result.current.version, retried)).ok).toBe(true);
      expect((await rowsOf(schema))[agentId(7)]?.name).toBe("seven");
    });

    it("refuses to insert a record another handle inserted since the read, and writes nothing", async () => {
      const schema = newSchema();
      const [first, second] = [open(schema), open(schema)];
      expect((await first.compareAndSet(0, withAgents([7]))).ok).toBe(true);
      const base = await first.read();
      await second.read();
      const added = (names: Record<number, string>) => {
        const next = withAgents([7, 9]);
        return renamed(next, names);
      };
      expect((await second.compareAndSet(base.version, added({ 9: "theirs" }))).ok).toBe(true);
      const result = await first.compareAndSet(base.version, added({ 7: "seven", 9: "mine" }));
      expect(result.ok).toBe(false);
      const rows = await rowsOf(schema);
      expect(rows[agentId(9)]?.name).toBe("theirs");
      expect(rows[agentId(7)]?.name).toBe("agent 7");
    });

    it("deletes a record (a tombstone), and a later write brings it back", async () => {
      const schema = newSchema();
      const store = open(schema);
      expect((await store.compareAndSet(0, withAgents([7, 8]))).ok).toBe(true);
      let snapshot = await store.read();
      const without = structuredClone(snapshot.data) as StoreData;
      delete without.principals[agentId(8)];
      expect((await store.compareAndSet(snapshot.version, without)).ok).toBe(true);
      expect((await rowsOf(schema))[agentId(8)]?.name).toBeUndefined();
      // Another handle that read before the delete learns of it from the tombstone.
      expect(Object.keys((await open(schema).read()).data.principals)).not.toContain(agentId(8));
      snapshot = await store.read();
      const back = renamed(withAgents([7, 8]), { 8: "again" });
      expect((await store.compareAndSet(snapshot.version, back)).ok).toBe(true);
      expect((await open(schema).read()).data.principals[agentId(8)]?.name).toBe("again");
    });

    it("purges tombstones a thousand versions old when the version reaches a thousand", async () => {
      const schema = newSchema();
      const store = open(schema);
      expect((await store.compareAndSet(0, withAgents([7, 8]))).ok).toBe(true);
      let snapshot = await store.read();
      const without = structuredClone(snapshot.data) as StoreData;
      delete without.principals[agentId(8)];
      expect((await store.compareAndSet(snapshot.version, without)).ok).toBe(true);
      const tombstones = async () =>
        (await adminQuery(`SELECT count(*) AS n FROM "${schema}".principals WHERE data IS NULL`))
          .rows[0].n;
      expect(Number(await tombstones())).toBe(1);
      // The next write makes version 2000: tombstones at or below 1000 go.
      await adminQuery(`UPDATE "${schema}".store_meta SET version = 1999`);
      snapshot = await store.read();
      expect(
        (await store.compareAndSet(snapshot.version, renamed(snapshot.data, { 7: "x" }))).ok,
      ).toBe(true);
      expect(Number(await tombstones())).toBe(0);
      const { rows } = await adminQuery(`SELECT purged_below FROM "${schema}".store_meta`);
      expect(Number(rows[0].purged_below)).toBe(1000);
      // A handle that knew a version before the purge reads the whole document again.
      expect(Object.keys((await open(schema).read()).data.principals)).toEqual(
        expect.arrayContaining([agentId(7)]),
      );
    });
  });
}

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import {
  isRekeyError,
  openKey,
  parseMasterKey,
  type RekeyError,
  type StoreData,
} from "@rekey/core";
import { SealedKey } from "@rekey/core/store-kit";
import { sampleStoreData } from "@rekey/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { adminQuery, dropSchema, freshSchema, postgresUrl } from "./postgres.test-helper.js";
import { createPostgresStore, type PostgresStore } from "./postgres-store.js";
import { TEST_MASTER_KEY_ENV } from "./testing/master-key.js";
import { dropPostgresSchema, findPostgresBin } from "./testing/temporary-postgres.js";

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isRekeyError(error)) throw new Error(`expected a RekeyError, got ${String(error)}`);
  return error;
}

/** Two principals, each with its own key. */
function twoPrincipals(): StoreData {
  const data = structuredClone(sampleStoreData("one")) as StoreData;
  data.principals["http://127.0.0.1:8787#agent:7"] = {
    faucet: "http://127.0.0.1:8787",
    principal: "agent:7",
    operatorId: 1,
    key: "lf_agent_seven_key_0123456789",
    fingerprint: "fp:777777777777",
    savedAt: "2025-01-01T00:00:00.000Z",
    source: "create",
  };
  return data;
}
const KEYS = Object.values(twoPrincipals().principals).map((record) => record.key as string);

if (postgresUrl === "") {
  describe("PostgreSQL keys at rest", () => {
    it.skip("needs PostgreSQL: its server programs (initdb) on this machine, or REKEY_TEST_PG_URL", () => {});
  });
} else {
  describe("PostgreSQL keys at rest", () => {
    const schemas: string[] = [];
    const stores: PostgresStore[] = [];
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      for (const schema of schemas.splice(0)) await dropSchema(schema);
    });
    const newSchema = () => {
      const schema = freshSchema();
      schemas.push(schema);
      return schema;
    };
    const open = (
      schema: string,
      env: Record<string, string> = TEST_MASTER_KEY_ENV,
      previous: string[] = [],
    ) => {
      const store = createPostgresStore({
        url: postgresUrl,
        schema,
        env,
        previousMasterKeys: previous.map((key) => parseMasterKey(key, "previous")),
      });
      stores.push(store);
      return store;
    };
    const rowsOf = async (schema: string) =>
      (await adminQuery(`SELECT id, data::text AS text FROM "${schema}".principals ORDER BY id`))
        .rows as { id: string; text: string }[];

    /** `schema` as rekey c8484b6 wrote it: schema 2, {@link twoPrincipals}' rows in clear. */
    const writeSchema2Store = async (schema: string) => {
      await open(schema).compareAndSet(0, twoPrincipals());
      for (const [id, record] of Object.entries(twoPrincipals().principals)) {
        await adminQuery(`UPDATE "${schema}".principals SET data = $2 WHERE id = $1`, [
          id,
          JSON.stringify(record),
        ]);
      }
      await adminQuery(
        `UPDATE "${schema}".store_meta SET data = (data::jsonb || '{"schemaVersion": 2}')::json`,
      );
    };

    it("refuses to open without an explicit master key source, saying which to set", () => {
      let error: unknown;
      try {
        createPostgresStore({ url: postgresUrl, schema: "rekey", env: {} });
      } catch (caught) {
        error = caught;
      }
      expect(isRekeyError(error, "STORE_LOCKED")).toBe(true);
      expect((error as RekeyError).message).toContain("REKEY_MASTER_KEY_FILE");
      expect((error as RekeyError).hint).toContain("openssl rand -base64 32");
    });

    it("seals every key in its row; a pg_dump of the schema holds none", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      for (const row of await rowsOf(schema)) {
        for (const key of KEYS) expect(row.text).not.toContain(key);
        expect(JSON.parse(row.text).key).toMatch(/^rk1:/);
      }
      const bin = findPostgresBin();
      const pgDump = bin === undefined ? "pg_dump" : `${bin}/pg_dump`;
      const { stdout } = await promisify(execFile)(pgDump, ["--schema", schema, postgresUrl], {
        maxBuffer: 16 * 1024 * 1024,
      });
      expect(stdout).toContain("rk1:");
      for (const key of KEYS) expect(stdout).not.toContain(key);
      expect((await open(schema).read()).data).toEqual(twoPrincipals());
      expect((await open(schema).health()).encryption).toMatchObject({
        state: "encrypted",
        clearKeys: 0,
        keySource: "REKEY_MASTER_KEY",
      });
    });

    it("a read leaves each key sealed, as data; a copy written back keeps every row as it was", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const before = await rowsOf(schema);
      const store = open(schema);
      const snapshot = await store.read();
      for (const row of before) {
        const record = snapshot.data.principals[row.id];
        // Data, not an accessor (no per-record getter): nothing is decrypted by a read.
        expect(Object.getOwnPropertyDescriptor(record, "key")?.get).toBeUndefined();
        expect(record?.key).toBeInstanceOf(SealedKey);
        expect((record?.key as SealedKey | undefined)?.sealed).toBe(JSON.parse(row.text).key);
        expect(KEYS).toContain(openKey(record?.key ?? ""));
      }
      // A structuredClone (the documented way to change a snapshot) written back: the rows'
      // ciphertexts are unchanged, and only the record that changed is written.
      const next = structuredClone(snapshot.data) as StoreData;
      const [changedId] = Object.keys(next.principals) as [string];
      next.principals[changedId] = {
        ...(next.principals[changedId] as StoreData["principals"][string]),
        name: "renamed",
      };
      expect((await store.compareAndSet(snapshot.version, next)).ok).toBe(true);
      const after = await rowsOf(schema);
      for (const [index, row] of after.entries()) {
        const was = before[index];
        expect(JSON.parse(row.text).key).toBe(JSON.parse(was?.text ?? "{}").key);
        if (row.id !== changedId) expect(row.text).toBe(was?.text);
      }
      const expected = twoPrincipals();
      expected.principals[changedId] = {
        ...(expected.principals[changedId] as StoreData["principals"][string]),
        name: "renamed",
      };
      expect(await open(schema).read()).toEqual({ version: snapshot.version + 1, data: expected });
    });

    it("a handle's next write of a record whose key it wrote in clear keeps the ciphertext it wrote", async () => {
      const schema = newSchema();
      const store = open(schema);
      const written = await store.compareAndSet(0, twoPrincipals());
      if (!written.ok) throw new Error("the first write conflicted");
      const before = await rowsOf(schema);
      // The snapshot it hands back holds the keys as written (sealed, as a read leaves them).
      for (const row of before) {
        const key = written.snapshot.data.principals[row.id]?.key;
        expect(key).toBeInstanceOf(SealedKey);
        expect((key as SealedKey).sealed).toBe(JSON.parse(row.text).key);
        expect(KEYS).toContain(openKey(key ?? ""));
      }
      // A rotation writes its record again from that snapshot: sealed again, the ciphertext
      // would change (a new nonce); it must be the bytes already stored.
      const next = structuredClone(written.snapshot.data) as StoreData;
      for (const id of Object.keys(next.principals)) {
        next.principals[id] = {
          ...(next.principals[id] as StoreData["principals"][string]),
          name: "renamed",
        };
      }
      expect((await store.compareAndSet(written.snapshot.version, next)).ok).toBe(true);
      const after = await rowsOf(schema);
      expect(after.map((row) => JSON.parse(row.text).key)).toEqual(
        before.map((row) => JSON.parse(row.text).key),
      );
      expect(after.map((row) => JSON.parse(row.text).name)).toEqual(["renamed", "renamed"]);
    });

    it("the suites' scan of a dropped schema catches a raw key planted in a row", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const planted = `lf_${randomBytes(32).toString("base64url")}`;
      await adminQuery(
        `UPDATE "${schema}".principals SET data = jsonb_set(data::jsonb, '{key}', to_jsonb($1::text))::json WHERE id = (SELECT min(id) FROM "${schema}".principals)`,
        [planted],
      );
      await expect(dropPostgresSchema(postgresUrl, schema)).rejects.toThrow(
        `A raw key was found at rest in PostgreSQL: ${schema}.principals`,
      );
      // Dropped all the same: the scan reports, it does not leave a schema behind.
      const left = await adminQuery(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
        [schema],
      );
      expect(left.rowCount).toBe(0);
    });

    it("seals a schema-2 store row by row on first open, keeping every key", async () => {
      const schema = newSchema();
      await writeSchema2Store(schema);
      const clear = open(schema);
      const health = await clear.health();
      // Opening sealed it already: health runs after the set-up.
      expect(health.encryption).toMatchObject({ state: "encrypted", clearKeys: 0 });
      for (const row of await rowsOf(schema)) {
        for (const key of KEYS) expect(row.text).not.toContain(key);
      }
      const { rows } = await adminQuery(`SELECT data FROM "${schema}".store_meta`);
      expect(rows[0].data.schemaVersion).toBe(3);
      expect((await clear.read()).data).toEqual(twoPrincipals());
    });

    it("keeps each migrated row's pre-migration form sealed in a backup table, and restores from it", async () => {
      const schema = newSchema();
      await writeSchema2Store(schema);
      const migrated = open(schema);
      await migrated.read();
      const backupRows = (
        await adminQuery(
          `SELECT id, data::text AS text FROM "${schema}".principals_schema_2 ORDER BY id`,
        )
      ).rows as { id: string; text: string }[];
      expect(backupRows.map((row) => row.id)).toEqual(
        Object.keys(twoPrincipals().principals).sort(),
      );
      for (const row of backupRows) {
        for (const key of KEYS) expect(row.text).not.toContain(key);
        expect(JSON.parse(row.text)).toMatchObject({ rekeySealedBackup: 1 });
      }
      expect(await migrated.migrationBackup()).toEqual(twoPrincipals().principals);

      // A record lost after the migration (a bad write, an operator's mistake)...
      const [lostId] = Object.keys(twoPrincipals().principals) as [string];
      const before = await migrated.read();
      const { [lostId]: _lost, ...kept } = before.data.principals;
      expect(
        (
          await migrated.compareAndSet(before.version, {
            ...before.data,
            principals: kept,
          } as StoreData)
        ).ok,
      ).toBe(true);
      // ...comes back from the backup, written through the store: sealed again.
      const backup = await migrated.migrationBackup();
      const current = await migrated.read();
      const restored = await migrated.compareAndSet(current.version, {
        ...current.data,
        principals: { ...current.data.principals, [lostId]: backup[lostId] },
      } as StoreData);
      expect(restored.ok).toBe(true);
      expect((await open(schema).read()).data).toEqual(twoPrincipals());
      for (const row of await rowsOf(schema)) {
        for (const key of KEYS) expect(row.text).not.toContain(key);
      }

      // A backup row moved to another row's place does not restore as that row.
      const [first, second] = backupRows as [
        { id: string; text: string },
        { id: string; text: string },
      ];
      await adminQuery(`UPDATE "${schema}".principals_schema_2 SET data = $2 WHERE id = $1`, [
        second.id,
        first.text,
      ]);
      const error = await rejection(open(schema).migrationBackup());
      expect(error.code).toBe("STORE_CORRUPT");
    });

    it("a store that never held a key in clear keeps no migration backup", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const { rows } = await adminQuery(
        `SELECT to_regclass('"${schema}".principals_schema_2') IS NOT NULL AS present`,
      );
      expect(rows[0].present).toBe(false);
      expect(await open(schema).migrationBackup()).toEqual({});
    });

    it("once every row is sealed under the current key, an open does not look again until the schema says so", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const keyId = parseMasterKey(TEST_MASTER_KEY_ENV.REKEY_MASTER_KEY, "test").id;
      const sealedUnder = async () =>
        (await adminQuery(`SELECT sealed_under FROM "${schema}".store_sealing`)).rows[0]
          .sealed_under;
      expect(await sealedUnder()).toBe(keyId);
      // A schema set up by the previous rekey has no such column: an open looks, then adds it.
      await adminQuery(`ALTER TABLE "${schema}".store_sealing DROP COLUMN sealed_under`);
      expect((await open(schema).read()).data).toEqual(twoPrincipals());
      expect(await sealedUnder()).toBe(keyId);
      // A row put back in clear behind rekey's back (schema still 3) is not looked for on open,
      // but doctor counts it...
      const [first] = await rowsOf(schema);
      const record = twoPrincipals().principals[first?.id as string];
      await adminQuery(`UPDATE "${schema}".principals SET data = $2 WHERE id = $1`, [
        first?.id,
        JSON.stringify(record),
      ]);
      const health = await open(schema).health();
      expect(health.encryption).toMatchObject({ state: "clear", clearKeys: 1 });
      // ...and an older rekey's schema-2 mark makes the next open look, and seal it.
      await adminQuery(
        `UPDATE "${schema}".store_meta SET data = (data::jsonb || '{"schemaVersion": 2}')::json`,
      );
      expect((await open(schema).health()).encryption).toMatchObject({
        state: "encrypted",
        clearKeys: 0,
      });
      for (const row of await rowsOf(schema)) {
        for (const key of KEYS) expect(row.text).not.toContain(key);
      }
    });

    it("a wrong master key is STORE_LOCKED and changes no row", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const before = await rowsOf(schema);
      const wrong = open(schema, { REKEY_MASTER_KEY: randomBytes(32).toString("base64") });
      const error = await rejection(wrong.read());
      expect(error.code).toBe("STORE_LOCKED");
      expect(error.hint).toContain("master key");
      expect((await rejection(wrong.compareAndSet(1, sampleStoreData("x")))).code).toBe(
        "STORE_LOCKED",
      );
      expect(await rowsOf(schema)).toEqual(before);
    });

    it("two rows' ciphertexts swapped is STORE_CORRUPT where a key is read and in doctor, and nothing is rewritten", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const [first, second] = await rowsOf(schema);
      const keyOf = (text: string) => JSON.parse(text).key as string;
      const swap = async (id: string, text: string, key: string) =>
        adminQuery(`UPDATE "${schema}".principals SET data = $2 WHERE id = $1`, [
          id,
          JSON.stringify({ ...JSON.parse(text), key }),
        ]);
      await swap(first?.id as string, first?.text as string, keyOf(second?.text as string));
      await swap(second?.id as string, second?.text as string, keyOf(first?.text as string));
      const swapped = await rowsOf(schema);
      // A read leaves keys sealed until used: each swapped key fails where it is read, and
      // `doctor` (health), which opens every key, names both rows.
      const store = open(schema);
      const snapshot = await store.read();
      for (const row of swapped) {
        const record = snapshot.data.principals[row.id];
        expect(() => openKey(record?.key ?? "")).toThrow(/does not decrypt/);
      }
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(
        health.problems.filter((problem) => problem.includes("does not decrypt")),
      ).toHaveLength(2);
      expect(await rowsOf(schema)).toEqual(swapped);
    });

    it("re-keys every row under a new master key, the old one accepted until it is done", async () => {
      const schema = newSchema();
      await open(schema).compareAndSet(0, twoPrincipals());
      const next = randomBytes(32).toString("base64");
      const nextId = parseMasterKey(next, "next").id;
      const moving = open(schema, { REKEY_MASTER_KEY: next }, [
        TEST_MASTER_KEY_ENV.REKEY_MASTER_KEY,
      ]);
      expect((await moving.read()).data).toEqual(twoPrincipals());
      for (const row of await rowsOf(schema)) expect(JSON.parse(row.text).key).toContain(nextId);
      expect((await open(schema, { REKEY_MASTER_KEY: next }).read()).data).toEqual(twoPrincipals());
      expect((await rejection(open(schema).read())).code).toBe("STORE_LOCKED");
    });
  });
}

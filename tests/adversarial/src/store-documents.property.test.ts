import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CredentialStore, createFileStore, isRekeyError, type StoreData } from "@rekey/core";
import { sampleStoreData } from "@rekey/core/testing";
import { createPostgresStore } from "@rekey/store-postgres";
import {
  dropPostgresSchema,
  queryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { BUDGET, SEED } from "./budget.js";
import { expectNoRawKeyRecorded, record } from "./transcript.js";

// A key-shaped secret planted in every document: no error may repeat it.
const PLANTED = `lf_${"Q".repeat(20)}planted${"Z".repeat(16)}`;

function plantedData(): StoreData {
  const data = sampleStoreData("fuzz");
  for (const record of Object.values(data.principals)) record.key = PLANTED;
  return data;
}

/** Replaces a value somewhere in a JSON tree: the shape of a hand edit gone wrong. */
const mutatedData = fc
  .tuple(fc.nat(), fc.jsonValue(), fc.boolean())
  .map(([index, replacement, remove]) => {
    const data = plantedData() as unknown as Record<string, unknown>;
    const paths: Array<[Record<string, unknown>, string]> = [];
    const walk = (node: unknown) => {
      if (node === null || typeof node !== "object") return;
      for (const [key, child] of Object.entries(node)) {
        paths.push([node as Record<string, unknown>, key]);
        walk(child);
      }
    };
    walk(data);
    const [parent, key] = paths[index % paths.length] ?? [data, "schemaVersion"];
    if (remove) delete parent[key];
    else parent[key] = replacement;
    return data;
  });

/** Documents for credentials.json: text, JSON of every shape, and near-misses of a real one. */
const fileDocument = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
  fc.json({ maxDepth: 4 }),
  fc
    .record({
      version: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
      data: fc.jsonValue({ maxDepth: 4 }),
    })
    .map((document) => JSON.stringify(document)),
  mutatedData.map((data) =>
    JSON.stringify({ version: 3, sealing: { storeId: "fuzz" }, data }, null, 2),
  ),
  fc.nat().map((cut) => {
    const text = JSON.stringify(
      { version: 3, sealing: { storeId: "fuzz" }, data: plantedData() },
      null,
      2,
    );
    return text.slice(0, cut % text.length);
  }),
);

/** What a store read gives: a snapshot, or the error it threw. */
async function outcome(store: CredentialStore): Promise<{ version: number } | Error> {
  return store.read().then(
    (snapshot) => snapshot,
    (error: unknown) => error as Error,
  );
}

/**
 * The invariant for any document: a read is a snapshot of a real store document or
 * STORE_CORRUPT (never "empty", never another failure), and a write after a corrupt read is
 * refused with STORE_CORRUPT and leaves the document as it was.
 */
async function checkDocument(
  store: CredentialStore,
  label: string,
  current: () => Promise<string>,
): Promise<"read" | "corrupt"> {
  const before = await current();
  const read = await outcome(store);
  if (!(read instanceof Error)) {
    // Read as a store: it must be one, not an empty store made up for unreadable content.
    expect(read.version, label).toBeGreaterThan(0);
    return "read";
  }
  record(`${label} read error`, JSON.stringify(read));
  expect(isRekeyError(read, "STORE_CORRUPT"), `${label}: ${String(read)}`).toBe(true);
  const write = await store.compareAndSet(0, sampleStoreData("over")).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  record(`${label} write error`, JSON.stringify(write));
  expect(isRekeyError(write, "STORE_CORRUPT"), `${label}: ${String(write)}`).toBe(true);
  expect(await current(), `${label}: the document was overwritten`).toBe(before);
  return "corrupt";
}

describe("store documents under generated content", () => {
  const counts = { read: 0, corrupt: 0 };
  afterAll(() => {
    console.log(`store documents: ${counts.corrupt} refused as STORE_CORRUPT, ${counts.read} read`);
  });

  describe("file store: credentials.json", () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "rekey-adversarial-docs-"));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it("is read as a store or refused as STORE_CORRUPT, and never overwritten", async () => {
      const store = createFileStore({ dir: root });
      await store.compareAndSet(0, sampleStoreData("first"));
      const path = join(root, "credentials.json");
      try {
        await fc.assert(
          fc.asyncProperty(fileDocument, async (document) => {
            await writeFile(path, document, { mode: 0o600 });
            const result = await checkDocument(
              store,
              `credentials.json ${JSON.stringify(document).slice(0, 300)}`,
              () => readFile(path, "latin1"),
            );
            counts[result] += 1;
          }),
          { numRuns: BUDGET.storeDocuments, seed: SEED, endOnFailure: true },
        );
      } finally {
        await store.close();
      }
    });
  });

  describe("PostgreSQL store: the principal and store_meta rows", () => {
    const url = inject("postgresUrl");
    const schema = "adversarial_documents";

    it.skipIf(url === "")(
      "are read as a store or refused as STORE_CORRUPT, and never overwritten",
      async () => {
        // This test plants rows by SQL, clear keys among them (what a DB writer could do), so
        // the schema is dropped without the "no raw key at rest" scan, which would find them.
        await dropPostgresSchema(url, schema, { allowClearKeys: true });
        const store = createPostgresStore({ url, schema, env: TEST_MASTER_KEY_ENV });
        const [recordId] = Object.keys(sampleStoreData("first").principals);
        try {
          await store.compareAndSet(0, sampleStoreData("first"));
          const rows = async () => {
            const { rows: found } = await queryPostgres(
              url,
              `SELECT (SELECT version::text || ' ' || data::text FROM "${schema}".store_meta)
                   || ' | ' || (SELECT coalesce(data::text, 'null') FROM "${schema}".principals
                                WHERE id = $1) AS row`,
              [recordId],
            );
            return String((found[0] as { row: string }).row);
          };
          const rowData = fc.oneof(
            fc.jsonValue({ maxDepth: 4 }),
            mutatedData.map(
              (data) =>
                (data as { principals?: Record<string, unknown> }).principals?.[recordId ?? ""] ??
                data,
            ) as fc.Arbitrary<unknown>,
          );
          await fc.assert(
            fc.asyncProperty(rowData, fc.boolean(), async (data, intoMeta) => {
              // A new store version, as any writer sets: the store re-reads what changed.
              await queryPostgres(
                url,
                intoMeta
                  ? `UPDATE "${schema}".store_meta SET version = version + 1, meta_version = version + 1, data = $1::json WHERE id = 1`
                  : `WITH turn AS (UPDATE "${schema}".store_meta SET version = version + 1 WHERE id = 1 RETURNING version)
                     UPDATE "${schema}".principals SET data = $1::json, version = (SELECT version FROM turn) WHERE id = $2`,
                intoMeta ? [JSON.stringify(data)] : [JSON.stringify(data), recordId],
              );
              const result = await checkDocument(
                store,
                `${intoMeta ? "store_meta" : "principal"} row ${JSON.stringify(data).slice(0, 300)}`,
                rows,
              );
              counts[result] += 1;
            }),
            { numRuns: Math.ceil(BUDGET.storeDocuments / 3), seed: SEED, endOnFailure: true },
          );
        } finally {
          await store.close();
          await dropPostgresSchema(url, schema, { allowClearKeys: true });
        }
      },
    );
  });

  it("no error repeated the key planted in the documents", () => {
    expectNoRawKeyRecorded();
  });
});

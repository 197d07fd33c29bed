import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileStore } from "./file-store.js";
import { faucetIdOf } from "./record-ids.js";
import { IDEMPOTENCY_SLOT_PATTERN, PROFILE_NAME_PATTERN, storeDataSchema } from "./schema.js";
import type { StoreData } from "./types.js";

const iso = fc
  .date({
    min: new Date("2000-01-01T00:00:00Z"),
    max: new Date("2100-01-01T00:00:00Z"),
    noInvalidDate: true,
  })
  .map((date) => date.toISOString());
// Any code points (names are free text), so multi-byte UTF-8 is written and read back too.
const text = fc.string({ minLength: 1, maxLength: 24, unit: "grapheme" });
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const surface = fc.constantFrom("cli", "mcp", "http", "library" as const);
const agentId = fc.integer({ min: 1, max: 2 ** 31 - 1 });
const principalKey = fc.oneof(
  agentId.map((id) => `operator:${id}`),
  agentId.map((id) => `agent:${id}`),
);
const profileName = fc.stringMatching(PROFILE_NAME_PATTERN);
const idempotencySlot = fc.stringMatching(IDEMPOTENCY_SLOT_PATTERN);

const rotationRecord = fc.record({
  requestId: text,
  oldFingerprint: text,
  newFingerprint: text,
  rotatedAt: iso,
  cooldownUntil: iso,
  verified: fc.boolean(),
  surface,
});

const keyFields = fc.option(
  fc.record({
    key: text,
    fingerprint: text,
    savedAt: iso,
    source: fc.constantFrom("register", "login", "create", "rotate", "recover", "import" as const),
  }),
  { nil: undefined },
);

const intent = fc.record({
  requestId: text,
  principal: principalKey,
  actor: principalKey,
  oldFingerprint: text,
  startedAt: iso,
  phase: fc.constantFrom("requested", "stored" as const),
  surface,
});

const record = fc
  .tuple(
    fc.webUrl(),
    principalKey,
    keyFields,
    fc.record(
      {
        name: fc.string({ maxLength: 24 }),
        operatorId: fc.nat(),
        lastRotation: rotationRecord,
        cooldownUntil: iso,
        intent,
      },
      { requiredKeys: [] },
    ),
  )
  .filter(([url]) => URL.canParse(url))
  .map(([url, principal, key, rest]) => ({
    faucet: faucetIdOf(url),
    principal,
    ...rest,
    ...(key ?? {}),
  }));

const idempotencyBase = { requestHash: hex64, createdAt: iso, expiresAt: iso };
const idempotency = fc.oneof(
  fc.record({ ...idempotencyBase, state: fc.constant("pending" as const), requestId: text }),
  fc.record({
    ...idempotencyBase,
    state: fc.constant("done" as const),
    // A result is JSON, so generate it as JSON.parse returns it: fc.jsonValue may produce -0,
    // which no JSON text can carry (it reads back as 0).
    result: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(JSON.stringify(value))),
  }),
);

const profile = fc.record(
  {
    baseUrl: fc.webUrl(),
    operator: agentId.map((id) => `operator:${id}`),
    actsAs: principalKey,
  },
  { requiredKeys: ["baseUrl"] },
);

const storeData = fc.record({
  schemaVersion: fc.constant(3 as const),
  principals: fc
    .array(record, { maxLength: 4 })
    .map((records) =>
      Object.fromEntries(records.map((entry) => [`${entry.faucet}#${entry.principal}`, entry])),
    ),
  profiles: fc.dictionary(profileName, profile, { maxKeys: 3 }),
  idempotency: fc.dictionary(idempotencySlot, idempotency, { maxKeys: 2 }),
});

describe("file store round trip", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "rekey-roundtrip-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads back any schema-valid data exactly as written, from a fresh handle", async () => {
    let run = 0;
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(storeData, async (generated) => {
        // Only data the schema accepts is promised to round-trip (e.g. URLs zod rejects are out).
        fc.pre(storeDataSchema.safeParse(generated).success);
        const data = generated as StoreData;
        const dir = join(root, `case-${run++}`);
        const writer = createFileStore({ dir });
        const written = await writer.compareAndSet(0, data);
        await writer.close();
        expect(written.ok).toBe(true);
        // The file holds exactly what JSON.stringify gives, though it is assembled from cached
        // per-record bytes.
        // Keys are sealed (random IVs): the file is what JSON.stringify gives of the data with
        // each key replaced by its ciphertext, under the store's sealing header.
        const first = await readFile(join(dir, "credentials.json"), "utf8");
        expect(first).toBe(`${JSON.stringify(asWritten(first, 1, data))}\n`);
        const reader = createFileStore({ dir });
        const read = await reader.read();
        expect(read).toEqual({ version: 1, data });
        // Written again from the frozen snapshot, every record's bytes come from the cache.
        const shared = { ...read.data, principals: { ...read.data.principals } } as StoreData;
        expect((await reader.compareAndSet(1, shared)).ok).toBe(true);
        await reader.close();
        // Written again from the frozen snapshot, every record keeps its bytes (and ciphertext).
        const second = await readFile(join(dir, "credentials.json"), "utf8");
        expect(second).toBe(first.replace('{"version":1,', '{"version":2,'));
        checked += 1;
      }),
      { numRuns: 60 },
    );
    // The precondition must not have filtered the property into vacuity.
    expect(checked).toBeGreaterThanOrEqual(50);
  });
});

/**
 * What a file store writes for `data` at `version`: `data` with each key replaced by the
 * ciphertext the file holds in its place (checked to be one), under the file's sealing header.
 */
function asWritten(text: string, version: number, data: unknown): unknown {
  const onDisk = JSON.parse(text) as {
    sealing: { storeId: string };
    data: { principals: Record<string, { key?: string; alternates?: { key: string }[] }> };
  };
  const sealed = structuredClone(data) as typeof onDisk.data;
  for (const [id, record] of Object.entries(sealed.principals)) {
    const stored = onDisk.data.principals[id];
    if (record.key !== undefined) {
      expect(stored?.key).toMatch(/^rk1:/);
      record.key = stored?.key;
    }
    record.alternates?.forEach((alternate, index) => {
      const storedKey = stored?.alternates?.[index]?.key;
      expect(storedKey).toMatch(/^rk1:/);
      alternate.key = storedKey as string;
    });
  }
  return { version, sealing: onDisk.sealing, data: sealed };
}

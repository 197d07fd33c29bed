import { describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { sampleStoreData } from "./contract-suite.js";
import { assertWritableStoreData, migrateStoreData } from "./schema.js";

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return isRekeyError(error) ? error.code : String(error);
  }
  return undefined;
}

describe("store schema", () => {
  it("accepts current data unchanged", () => {
    expect(migrateStoreData(sampleStoreData("one"))).toEqual(sampleStoreData("one"));
  });

  it("refuses a store from a newer rekey, naming both versions", () => {
    const error = (() => {
      try {
        migrateStoreData({ schemaVersion: 4, profiles: {} }, "credentials.json");
      } catch (caught) {
        return caught;
      }
    })();
    expect(isRekeyError(error, "STORE_CORRUPT")).toBe(true);
    expect((error as Error).message).toBe(
      "credentials.json was written by a newer rekey (schema version 4; this rekey reads up to 3)",
    );
  });

  it.each([
    ["no schemaVersion", { profiles: {} }],
    ["schemaVersion 0", { schemaVersion: 0, profiles: {} }],
    ["a fractional schemaVersion", { schemaVersion: 1.5, profiles: {} }],
    ["an array", []],
    ["null", null],
    ["a timestamp with an offset", withOperator({ savedAt: "2025-01-01T00:00:00+02:00" })],
    ["an unknown key source", withOperator({ source: "stolen" })],
    [
      "a schema-1 agent keyed by name",
      {
        schemaVersion: 1,
        profiles: {
          p: {
            baseUrl: "http://127.0.0.1:1",
            active: "operator",
            agents: { bob: {} },
            intents: {},
            idempotency: {},
          },
        },
      },
    ],
    ["a record filed under another principal", misfiled()],
    ["a key without its fingerprint", withOperator({ fingerprint: undefined })],
  ])("treats %s as STORE_CORRUPT", (_label, raw) => {
    expect(codeOf(() => migrateStoreData(raw))).toBe("STORE_CORRUPT");
  });

  it("refuses to write invalid data as a caller bug (INTERNAL)", () => {
    const invalid = withOperator({ fingerprint: "" });
    expect(codeOf(() => assertWritableStoreData(invalid as never))).toBe("INTERNAL");
  });

  describe("idempotency records", () => {
    const times = {
      requestHash: "c".repeat(64),
      createdAt: "2026-12-01T00:00:00.000Z",
      expiresAt: "2026-12-02T00:00:00.000Z",
    };
    const withRecords = (idempotency: Record<string, unknown>) => ({
      ...sampleStoreData("x"),
      idempotency,
    });
    const previous = {
      ["a".repeat(48)]: { ...times, status: 202, body: null, pendingRequestId: "request-1" },
      ["b".repeat(48)]: { ...times, status: 200, body: { rotated: true } },
    };

    it("reads those the previous rekey wrote (an HTTP status and body) as outcomes", () => {
      expect(migrateStoreData(withRecords(previous)).idempotency).toEqual({
        ["a".repeat(48)]: { ...times, state: "pending", requestId: "request-1" },
        ["b".repeat(48)]: { ...times, state: "done", result: { rotated: true } },
      });
    });

    it("never writes the previous shape, nor a status beside an outcome", () => {
      expect(codeOf(() => assertWritableStoreData(withRecords(previous) as never))).toBe(
        "INTERNAL",
      );
      const mixed = { ["b".repeat(48)]: { ...times, state: "done", result: null, status: 200 } };
      expect(codeOf(() => assertWritableStoreData(withRecords(mixed) as never))).toBe("INTERNAL");
      expect(codeOf(() => migrateStoreData(withRecords(mixed)))).toBe("STORE_CORRUPT");
    });
  });
});

function withOperator(overrides: Record<string, unknown>) {
  const data = sampleStoreData("x");
  const [id, record] = Object.entries(data.principals)[0] ?? [];
  if (id === undefined) throw new Error("sample has an operator record");
  return { ...data, principals: { [id]: JSON.parse(JSON.stringify({ ...record, ...overrides })) } };
}

function misfiled() {
  const data = sampleStoreData("x");
  const record = Object.values(data.principals)[0];
  return { ...data, principals: { "http://127.0.0.1:8787#agent:9": record } };
}

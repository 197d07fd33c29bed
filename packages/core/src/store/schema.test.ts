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
        migrateStoreData({ schemaVersion: 2, profiles: {} }, "credentials.json");
      } catch (caught) {
        return caught;
      }
    })();
    expect(isRekeyError(error, "STORE_CORRUPT")).toBe(true);
    expect((error as Error).message).toBe(
      "credentials.json was written by a newer rekey (schema version 2; this rekey reads up to 1)",
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
      "an agent keyed by name",
      { schemaVersion: 1, profiles: { p: { ...profile(), agents: { bob: {} } } } },
    ],
  ])("treats %s as STORE_CORRUPT", (_label, raw) => {
    expect(codeOf(() => migrateStoreData(raw))).toBe("STORE_CORRUPT");
  });

  it("refuses to write invalid data as a caller bug (INTERNAL)", () => {
    const invalid = withOperator({ fingerprint: "" });
    expect(codeOf(() => assertWritableStoreData(invalid as never))).toBe("INTERNAL");
  });
});

function profile() {
  const { default: first } = sampleStoreData("x").profiles;
  if (first === undefined) throw new Error("sample has a default profile");
  return first;
}

function withOperator(overrides: Record<string, unknown>) {
  const base = profile();
  return {
    schemaVersion: 1,
    profiles: { default: { ...base, operator: { ...base.operator, ...overrides } } },
  };
}

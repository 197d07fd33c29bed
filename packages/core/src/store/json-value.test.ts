import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createFileStore } from "./file-store.js";
import { jsonValueSchema } from "./json-value.js";

describe("jsonValueSchema", () => {
  it("keeps a key named __proto__ where zod's z.json() dropped it", () => {
    const body = JSON.parse('{"__proto__":null,"list":[{"__proto__":1}]}');
    const parsed = jsonValueSchema.parse(body);
    expect(JSON.stringify(parsed)).toBe('{"__proto__":null,"list":[{"__proto__":1}]}');
  });

  it("refuses what JSON cannot hold", () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, undefined, () => 0, new Date(0)]) {
      expect(jsonValueSchema.safeParse(value).success, String(value)).toBe(false);
    }
    let deep: unknown = 0;
    for (let level = 0; level < 600; level++) deep = [deep];
    expect(jsonValueSchema.safeParse(deep).success).toBe(false);
  });

  it("a remembered body with a __proto__ key reads back from the file store as written", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rekey-json-value-"));
    try {
      const text = `{"version":1,"data":{"schemaVersion":2,"principals":{},"profiles":{},"idempotency":{"${"a".repeat(48)}":{"requestHash":"${"0".repeat(64)}","createdAt":"2026-01-01T00:00:00.000Z","expiresAt":"2026-01-02T00:00:00.000Z","status":200,"body":{"__proto__":null}}}}}\n`;
      await writeFile(join(dir, "credentials.json"), text, { mode: 0o600 });
      const store = createFileStore({ dir, env: {} });
      const { data } = await store.read();
      await store.close();
      const record = data.idempotency["a".repeat(48)];
      expect(JSON.stringify(record?.state === "done" ? record.result : undefined)).toBe(
        '{"__proto__":null}',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

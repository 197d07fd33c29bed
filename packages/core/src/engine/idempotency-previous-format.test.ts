import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createFileStore } from "../store/file-store.js";
import type { IdempotencyRecord } from "../store/types.js";
import {
  Crash,
  crashingAt,
  type EngineFixture,
  startEngineFixture,
  storedKey,
} from "./engine.test-helper.js";

/**
 * Idempotency records as the previous rekey wrote them: an HTTP reply (`status`, `body`), with
 * 202 and a `pendingRequestId` while the request ran. They are read as outcomes, with no schema
 * step (see storedIdempotencyRecordSchema): a retry answers as it did before the upgrade.
 */

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** The record in the shape the previous rekey wrote for it. */
function asPreviousRekeyWrote(record: IdempotencyRecord): Record<string, unknown> {
  const { requestHash, createdAt, expiresAt } = record;
  return record.state === "pending"
    ? {
        requestHash,
        createdAt,
        expiresAt,
        status: 202,
        body: null,
        pendingRequestId: record.requestId,
      }
    : { requestHash, createdAt, expiresAt, status: 200, body: record.result };
}

/** Rewrites the store file's idempotency records in the previous shape, as that rekey left them. */
async function rewriteAsPreviousRekey(dir: string): Promise<void> {
  const path = join(dir, "credentials.json");
  const document = JSON.parse(await readFile(path, "utf8"));
  const records = document.data.idempotency as Record<string, IdempotencyRecord>;
  expect(Object.keys(records)).toHaveLength(1);
  for (const [slot, record] of Object.entries(records)) {
    records[slot] = asPreviousRekeyWrote(record) as never;
  }
  await writeFile(path, `${JSON.stringify(document)}\n`, { mode: 0o600 });
}

const rotate =
  (rekey: ReturnType<EngineFixture["rekey"]>) =>
  async ({ requestId }: { requestId: string }) => {
    const result = await rekey.rotateKey({ requestId });
    return { fingerprint: result.newFingerprint };
  };

describe("idempotency records the previous rekey wrote (file store)", () => {
  it("a pending one left by a crash: the retry gets that rotation, not a second one", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const crashing = fixture.rekey({ hooks: crashingAt("key-stored") });
    await expect(
      crashing.withIdempotency("deploy-1", "{}", rotate(crashing)),
    ).rejects.toBeInstanceOf(Crash);
    await rewriteAsPreviousRekey(fixture.dir);

    // A fresh process of the new rekey on the file the previous one left.
    const store = createFileStore({ dir: fixture.dir, env: {} });
    try {
      const next = fixture.rekey({ store });
      let runs = 0;
      const retried = await next.withIdempotency("deploy-1", "{}", async (attempt) => {
        runs++;
        return rotate(next)(attempt);
      });
      expect(runs).toBe(1);
      expect(retried.replayed).toBe(false);
      expect(retried.result.fingerprint).toBe((await storedKey(store, "operator"))?.fingerprint);
      expect(fixture.sandbox.stats().rotations).toBe(1);
      // Written back in the new shape, and now a plain replay.
      const [record] = Object.values((await store.read()).data.idempotency);
      expect(record).toMatchObject({ state: "done", result: retried.result });
      expect(await next.withIdempotency("deploy-1", "{}", rotate(next))).toEqual({
        result: retried.result,
        replayed: true,
      });
    } finally {
      await store.close();
    }
  });

  it("a finished one is replayed without running, and another request under its key is refused", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const first = fixture.rekey();
    const answered = await first.withIdempotency("deploy-1", "{}", rotate(first));
    await rewriteAsPreviousRekey(fixture.dir);

    const store = createFileStore({ dir: fixture.dir, env: {} });
    try {
      const next = fixture.rekey({ store });
      let runs = 0;
      const run = async () => {
        runs++;
        return { fingerprint: "not this one" };
      };
      expect(await next.withIdempotency("deploy-1", "{}", run)).toEqual({
        result: answered.result,
        replayed: true,
      });
      await expect(next.withIdempotency("deploy-1", '{"force":true}', run)).rejects.toMatchObject({
        code: "IDEMPOTENCY_KEY_REUSED",
      });
      expect(runs).toBe(0);
      expect(fixture.sandbox.stats().rotations).toBe(1);
    } finally {
      await store.close();
    }
  });
});

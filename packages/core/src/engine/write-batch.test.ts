import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFileStore } from "../store/file-store.js";
import { idempotencySlot } from "../store/record-ids.js";
import type { CredentialStore, StoreData, WriteOptions } from "../store/types.js";
import { emptyStoreData } from "../store/types.js";
import { updateStore } from "./principal-records.js";

let dir: string;
let store: CredentialStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rekey-write-batch-"));
  store = createFileStore({ dir, env: {} });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** `store`, counting its compare-and-set calls (each one a write of the whole document). */
function countingWrites(inner: CredentialStore) {
  let writes = 0;
  const counted: CredentialStore = Object.create(inner, {
    compareAndSet: {
      value: (version: number, data: StoreData, options?: WriteOptions) => {
        writes++;
        return inner.compareAndSet(version, data, options);
      },
    },
  });
  return { store: counted, writes: () => writes };
}

/** The idempotency slot of `name`, as core names them. */
const slot = (name: string) => idempotencySlot("profile:default", name);

/** A change that records `name` in the store's idempotency records. */
const record = (name: string) => (draft: StoreData) => {
  draft.idempotency[slot(name)] = {
    requestHash: createHash("sha256").update(name).digest("hex"),
    createdAt: "2026-12-02T00:00:00.000Z",
    expiresAt: "2026-12-03T00:00:00.000Z",
    state: "done",
    result: name,
  };
  return name;
};

describe("updateStore in a burst", () => {
  it("writes 100 concurrent changes of one process together, losing none", async () => {
    await store.compareAndSet(0, emptyStoreData());
    const counting = countingWrites(store);
    const names = Array.from({ length: 100 }, (_, index) => `key-${index}`);
    const results = await Promise.all(
      names.map((name) => updateStore(counting.store, record(name))),
    );
    expect(results).toEqual(names);
    const written = (await store.read()).data.idempotency;
    expect(Object.keys(written).sort()).toEqual(names.map(slot).sort());
    // One write for the first change, one for everything asked meanwhile (a few more at most).
    expect(counting.writes()).toBeLessThanOrEqual(5);
  });

  it("fails only the change that throws, and writes the others", async () => {
    await store.compareAndSet(0, emptyStoreData());
    const outcomes = await Promise.allSettled([
      updateStore(store, record("a")),
      updateStore(store, record("b")),
      updateStore(store, () => {
        throw new Error("this change is refused");
      }),
      updateStore(store, record("c")),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    const written = (await store.read()).data.idempotency;
    expect(Object.keys(written).sort()).toEqual(["a", "b", "c"].map(slot).sort());
  });
});

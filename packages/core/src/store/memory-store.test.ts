import { describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { describeStoreContract, sampleStoreData } from "./contract-suite.js";
import { createMemoryStore } from "./memory-store.js";

describeStoreContract("memory", async () => ({
  store: createMemoryStore(),
  cleanup: async () => {},
}));

describe("memory store", () => {
  it("starts from initial data at version 1", async () => {
    const store = createMemoryStore({ initial: sampleStoreData("seed") });
    expect(await store.read()).toEqual({ version: 1, data: sampleStoreData("seed") });
    await store.close();
  });

  it("grants a contended lock to waiters first come, first served", async () => {
    const store = createMemoryStore();
    const held = await store.lock("operator", { leaseMs: 10_000, waitMs: 0 });
    const order: string[] = [];
    const waiters = ["first", "second", "third"].map((label) =>
      store.lock("operator", { leaseMs: 10_000, waitMs: 5000 }).then(async (lock) => {
        order.push(label);
        await lock.release();
      }),
    );
    await held.release();
    await Promise.all(waiters);
    expect(order).toEqual(["first", "second", "third"]);
    await store.close();
  });

  it("refuses every operation after close", async () => {
    const store = createMemoryStore();
    await store.close();
    const error = await store.read().catch((caught: unknown) => caught);
    expect(isRekeyError(error, "STORE_UNAVAILABLE")).toBe(true);
    expect((await store.health()).ok).toBe(false);
  });
});

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CredentialStore, LockOptions, StoreLock } from "../store/types.js";
import { type EngineFixture, startEngineFixture } from "./engine.test-helper.js";
import { createSingleFlight } from "./single-flight.js";

/**
 * The fixture's store, counting for each lock name how many lock sessions this process has
 * open at once (asked for or held): with PostgreSQL each one was a connection.
 */
function countingLocks(store: CredentialStore) {
  const open = new Map<string, number>();
  const most = new Map<string, number>();
  const counted: CredentialStore = Object.create(store, {
    lock: {
      value: async (name: string, options: LockOptions): Promise<StoreLock> => {
        const now = (open.get(name) ?? 0) + 1;
        open.set(name, now);
        most.set(name, Math.max(most.get(name) ?? 0, now));
        const done = () => open.set(name, (open.get(name) ?? 1) - 1);
        let lock: StoreLock;
        try {
          lock = await store.lock(name, options);
        } catch (error) {
          done();
          throw error;
        }
        let released = false;
        return {
          name,
          release: async () => {
            if (!released) done();
            released = true;
            await lock.release();
          },
        };
      },
    },
  });
  return { store: counted, most: () => Object.fromEntries(most) };
}

let fixture: EngineFixture;
beforeEach(async () => {
  fixture = await startEngineFixture({ store: "file" });
});
afterEach(async () => {
  await fixture.close();
});

describe("single flight", () => {
  it("shares one promise among callers that arrive while it runs, and starts afresh after", async () => {
    const flights = createSingleFlight<number>();
    let runs = 0;
    const work = async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return runs;
    };
    const first = flights.run("a", work);
    expect(flights.running("a")).toBe(first);
    expect(await Promise.all([first, flights.run("a", work), flights.run("a", work)])).toEqual([
      1, 1, 1,
    ]);
    expect(flights.running("a")).toBeUndefined();
    expect(await flights.run("a", work)).toBe(2);
    const failing = flights.run("b", async () => {
      throw new Error("no");
    });
    await expect(failing).rejects.toThrow("no");
    expect(flights.running("b")).toBeUndefined();
  });

  it("holds one lock per idempotency key in a process, however many requests share the key", async () => {
    const counting = countingLocks(fixture.store);
    const rekey = fixture.rekey({ store: counting.store, surface: "http" });
    await rekey.register({});
    let runs = 0;
    const run = async () => {
      runs++;
      const result = await rekey.rotateKey({ force: true });
      return "newFingerprint" in result ? result.newFingerprint : "";
    };
    const replies = await Promise.all(
      Array.from({ length: 30 }, () => rekey.withIdempotency("same-key", "same-body", run)),
    );
    expect(runs).toBe(1);
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect(new Set(replies.map((reply) => reply.result)).size).toBe(1);
    expect(replies.filter((reply) => !reply.replayed)).toHaveLength(1);
    const idempotencyLocks = Object.entries(counting.most()).filter(([name]) =>
      name.startsWith("idempotency."),
    );
    expect(idempotencyLocks).toHaveLength(1);
    expect(idempotencyLocks[0]?.[1]).toBe(1);
  });

  it("takes a principal's rotation lock once for concurrent rotations with distinct idempotency keys", async () => {
    const counting = countingLocks(fixture.store);
    const rekey = fixture.rekey({ store: counting.store, surface: "http" });
    await rekey.register({});
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        rekey.withIdempotency(`key-${index}`, "same-body", async () => {
          const result = await rekey.rotateKey();
          return "newFingerprint" in result ? result.newFingerprint : "";
        }),
      ),
    );
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect(new Set(replies.map((reply) => reply.result)).size).toBe(1);
    const rotationLocks = Object.entries(counting.most()).filter(([name]) =>
      name.startsWith("rotate."),
    );
    expect(rotationLocks.map(([, most]) => most)).toEqual([1]);
  });
});

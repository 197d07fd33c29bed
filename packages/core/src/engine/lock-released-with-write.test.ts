import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RekeyError } from "../errors.js";
import type { CredentialStore, WriteOptions } from "../store/types.js";
import { type EngineFixture, intentOf, startEngineFixture } from "./engine.test-helper.js";

/**
 * On a store that frees a lock with a write (`releasesLockWithWrite`: the memory store here,
 * PostgreSQL in production), a rotation hands its lock to the write that clears its journal
 * (`WriteOptions.release`), and only to that one; whatever that write does, the lock is free
 * once the rotation returns, and a failed write leaves the journal for the next run.
 */

let fixture: EngineFixture;
beforeEach(async () => {
  fixture = await startEngineFixture({ store: "memory" });
});
afterEach(async () => {
  await fixture.close();
});

/** `store` as it is, recording each write's options and each lock's name; `fails` refuses a write. */
function observed(store: CredentialStore, fails: (options: WriteOptions) => boolean) {
  const writes: WriteOptions[] = [];
  const locks: string[] = [];
  const wrapped: CredentialStore = {
    kind: store.kind,
    location: store.location,
    releasesLockWithWrite: store.releasesLockWithWrite === true,
    read: (options) => store.read(options),
    lock: (name, options) => {
      locks.push(name);
      return store.lock(name, options);
    },
    appendAudit: (event) => store.appendAudit(event),
    readAudit: () => store.readAudit(),
    watch: (listener) => store.watch(listener),
    checkWritable: () => store.checkWritable(),
    health: () => store.health(),
    close: async () => {},
    compareAndSet: async (version, data, options = {}) => {
      writes.push(options);
      if (fails(options))
        throw new RekeyError("STORE_UNAVAILABLE", "ENOSPC: no space left on device");
      return store.compareAndSet(version, data, options);
    },
  };
  return { store: wrapped, writes, locks };
}

/** Whether `name` can be taken at once on the fixture's store (and gives it back). */
async function free(name: string): Promise<boolean> {
  const lock = await fixture.store
    .lock(name, { leaseMs: 60_000, waitMs: 0 })
    .catch(() => undefined);
  await lock?.release();
  return lock !== undefined;
}

describe("a rotation on a store that frees its lock with a write", () => {
  it("hands the lock to the clearing write only, which frees it", async () => {
    expect(fixture.store.releasesLockWithWrite).toBe(true);
    const seen = observed(fixture.store, () => false);
    const rekey = fixture.rekey({ store: seen.store });
    await rekey.register({ name: "ops" });
    seen.writes.length = 0;
    seen.locks.length = 0;
    await rekey.rotateKey({ force: true });
    expect(seen.writes.map((options) => options.release !== undefined)).toEqual([
      false,
      false,
      true,
    ]);
    expect(seen.writes[2]?.release?.name).toBe(seen.locks[0]);
    expect(seen.locks).toHaveLength(1);
    expect(await free(seen.locks[0] ?? "")).toBe(true);
    expect(await intentOf(fixture.store, "operator")).toBeUndefined();
  });

  it("leaves the lock free when the clearing write fails, and the journal for the next run", async () => {
    let failing = false;
    const seen = observed(fixture.store, (options) => failing && options.release !== undefined);
    const rekey = fixture.rekey({ store: seen.store });
    await rekey.register({ name: "ops" });
    seen.locks.length = 0;
    failing = true;
    await rekey.rotateKey({ force: true }).catch(() => undefined);
    expect(seen.writes.some((options) => options.release !== undefined)).toBe(true);
    expect(await free(seen.locks[0] ?? "")).toBe(true);
    expect((await intentOf(fixture.store, "operator"))?.phase).toBe("stored");
    // The next run finishes it.
    failing = false;
    await fixture.rekey({ store: seen.store }).status();
    expect(await intentOf(fixture.store, "operator")).toBeUndefined();
  });
});

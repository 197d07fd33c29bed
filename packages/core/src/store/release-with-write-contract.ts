import { describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import type { CredentialStore, StoreData, StoreLock } from "./types.js";

/**
 * The contract of `WriteOptions.release`, for stores whose `releasesLockWithWrite` is true (run
 * by `describeStoreContract` for those): a lock is freed by a write only once the write
 * committed, so that the next holder sees it; a refused or failed write leaves it held until
 * `release()`; and a lock freed so, then released again, does not free its next holder.
 */
export function describeReleaseWithWrite(
  store: () => CredentialStore,
  another: () => Promise<CredentialStore>,
  sample: (marker: string) => StoreData,
): void {
  const lease = { leaseMs: 10_000, waitMs: 0 };
  /** Whether `of` can take `name` now (and gives it back at once). */
  const free = async (of: CredentialStore, name: string) => {
    const taken = await of.lock(name, lease).then(
      (lock) => lock,
      (error: unknown) => {
        if (isRekeyError(error, "ROTATION_IN_PROGRESS")) return undefined;
        throw error;
      },
    );
    await taken?.release();
    return taken !== undefined;
  };
  const nameOf = async (of: CredentialStore) =>
    Object.values((await of.read()).data.principals)[0]?.name;

  describe("a lock freed with a write (WriteOptions.release)", () => {
    it("declares releasesLockWithWrite", () => {
      expect(store().releasesLockWithWrite).toBe(true);
    });

    it("frees the lock once the write committed: the next holder takes it at once and sees the write", async () => {
      const one = store();
      const second = await another();
      const first = await one.compareAndSet(0, sample("one"));
      expect(first.ok).toBe(true);
      const lock = await one.lock("agent:7", lease);
      const written = await one.compareAndSet(1, sample("two"), { release: lock, durable: false });
      expect(written.ok).toBe(true);
      const next = await second.lock("agent:7", lease);
      try {
        expect(await nameOf(second)).toBe("two");
        // Released again by its holder (as every caller does): the next holder keeps it.
        await lock.release();
        expect(await free(one, "agent:7")).toBe(false);
      } finally {
        await next.release();
      }
      expect(await free(one, "agent:7")).toBe(true);
    });

    it("keeps the lock when the compare-and-set is refused, until release()", async () => {
      const one = store();
      const second = await another();
      expect((await one.compareAndSet(0, sample("one"))).ok).toBe(true);
      const current = await second.read();
      expect((await second.compareAndSet(current.version, sample("elsewhere"))).ok).toBe(true);
      const lock = await one.lock("agent:7", lease);
      const refused = await one.compareAndSet(1, sample("stale"), { release: lock });
      expect(refused.ok).toBe(false);
      expect(await free(second, "agent:7")).toBe(false);
      await lock.release();
      expect(await free(second, "agent:7")).toBe(true);
    });

    it("keeps the lock when a write that also changes the profiles is refused, until release()", async () => {
      const one = store();
      const second = await another();
      const withProfile = (marker: string, profile: string): StoreData => {
        const data = sample(marker);
        return {
          ...data,
          profiles: { ...data.profiles, [profile]: { baseUrl: "http://127.0.0.1:8787" } },
        };
      };
      expect((await one.compareAndSet(0, sample("one"))).ok).toBe(true);
      const current = await second.read();
      const theirs = withProfile("elsewhere", "theirs");
      expect((await second.compareAndSet(current.version, theirs)).ok).toBe(true);
      const lock = await one.lock("agent:7", lease);
      const refused = await one.compareAndSet(1, withProfile("stale", "mine"), { release: lock });
      expect(refused.ok).toBe(false);
      expect(await free(second, "agent:7")).toBe(false);
      await lock.release();
      expect(await free(second, "agent:7")).toBe(true);
    });

    it("keeps the lock when the write fails, until release()", async () => {
      const one = store();
      expect((await one.compareAndSet(0, sample("one"))).ok).toBe(true);
      const lock = await one.lock("agent:7", lease);
      const invalid = { ...sample("bad"), schemaVersion: 99 } as unknown as StoreData;
      await expect(one.compareAndSet(1, invalid, { release: lock })).rejects.toThrow();
      expect(await free(await another(), "agent:7")).toBe(false);
      await lock.release();
      expect(await free(await another(), "agent:7")).toBe(true);
    });

    it("does not free a lock another handle holds", async () => {
      const one = store();
      const second = await another();
      expect((await one.compareAndSet(0, sample("one"))).ok).toBe(true);
      const theirs: StoreLock = await second.lock("agent:8", lease);
      try {
        const written = await one.compareAndSet(1, sample("two"), { release: theirs });
        expect(written.ok).toBe(true);
        if (second !== one) expect(await free(one, "agent:8")).toBe(false);
      } finally {
        await theirs.release();
      }
    });
  });
}

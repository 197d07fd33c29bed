import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { verifyAuditChain } from "./audit-chain.js";
import { describeAuditWithWrite } from "./audit-with-write-contract.js";
import { installSealedKeyEquality } from "./sealed-key-equality.js";
import {
  type AuditEventInput,
  type CredentialStore,
  emptyStoreData,
  type StoreData,
  type StoreLock,
  type StoreSnapshot,
} from "./types.js";

/**
 * The behaviour every {@link CredentialStore} must show, as a vitest suite. Each backend's test
 * file calls {@link describeStoreContract} with a factory for a fresh, empty store.
 */

export interface StoreContractFixture {
  store: CredentialStore;
  /**
   * Opens a second handle on the same data, as another process or connection would (another
   * FileStore on the same directory, another pool). Omit when there is no such thing (memory).
   */
  openAnother?: () => Promise<CredentialStore>;
  /**
   * Takes the lock `name` with `leaseMs` as a holder that then dies without releasing it (for
   * shared backends: a real process, killed). Default: lock through `store` and never release.
   */
  crashLockHolder?: (name: string, leaseMs: number) => Promise<void>;
  /** Removes what the factory made; the suite closes the stores itself first. */
  cleanup(): Promise<void>;
}

const SAMPLE_OPERATOR_ID = "http://127.0.0.1:8787#operator:1";
const SLOT = "0123456789abcdef0123456789abcdef0123456789abcdef";

/** Builds a valid StoreData with one profile whose operator record's name carries `marker`. */
export function sampleStoreData(marker: string): StoreData {
  return {
    schemaVersion: 3,
    principals: {
      [SAMPLE_OPERATOR_ID]: {
        faucet: "http://127.0.0.1:8787",
        principal: "operator:1",
        name: marker,
        operatorId: 1,
        key: `lf_contract_test_key_${marker}`,
        fingerprint: "fp:0123456789ab",
        savedAt: "2025-01-01T00:00:00.000Z",
        source: "register",
      },
    },
    profiles: {
      default: { baseUrl: "http://127.0.0.1:8787", operator: "operator:1" },
    },
    idempotency: {},
  };
}

function auditEvent(outcome: AuditEventInput["outcome"]): AuditEventInput {
  return {
    at: "2025-01-01T00:00:00.000Z",
    surface: "library",
    profile: "default",
    principal: "agent:7",
    action: "rotate",
    outcome,
    oldFingerprint: "fp:0123456789ab",
    newFingerprint: "fp:ba9876543210",
    requestId: "req-1",
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 10 ms for up to `timeoutMs`; true once it holds. */
async function eventually(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Whether `promise` is still pending after `ms`. */
async function stillPendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  const outcome = await Promise.race([
    promise.then(
      () => "settled",
      () => "settled",
    ),
    sleep(ms).then(() => pending),
  ]);
  return outcome === pending;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isRekeyError(error), `expected a RekeyError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

/**
 * Registers the credential store contract suite under `describe(name)`.
 *
 * @param factory makes a fresh, empty store for each test.
 * @param options.appendsAuditWithWrite the store takes `WriteOptions.audit` (and says so):
 *   its suite runs too.
 * @param options.readsWithLock the store answers `LockOptions.read` with a snapshot.
 */
export function describeStoreContract(
  name: string,
  factory: () => Promise<StoreContractFixture>,
  options: { appendsAuditWithWrite?: boolean; readsWithLock?: boolean } = {},
): void {
  // A store that seals keys at rest reads them back sealed: "what was written" is what each
  // key opens to.
  installSealedKeyEquality();
  describe(`${name}: credential store contract`, () => {
    let fixture: StoreContractFixture;
    let store: CredentialStore;
    const opened: CredentialStore[] = [];

    const another = async (): Promise<CredentialStore> => {
      if (fixture.openAnother === undefined) return store;
      const second = await fixture.openAnother();
      opened.push(second);
      return second;
    };

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      for (const extra of opened.splice(0)) await extra.close();
      await store.close();
      await fixture.cleanup();
    });

    describe("read and compare-and-set", () => {
      it("reads an empty store as version 0 with no profiles", async () => {
        const snapshot = await store.read();
        expect(snapshot).toEqual({ version: 0, data: emptyStoreData() });
      });

      it("increments the version on each successful write and reads back what was written", async () => {
        const first = await store.compareAndSet(0, sampleStoreData("one"));
        expect(first).toEqual({ ok: true, snapshot: { version: 1, data: sampleStoreData("one") } });
        const second = await store.compareAndSet(1, sampleStoreData("two"));
        expect(second).toEqual({
          ok: true,
          snapshot: { version: 2, data: sampleStoreData("two") },
        });
        expect(await store.read()).toEqual({ version: 2, data: sampleStoreData("two") });
        expect(await (await another()).read()).toEqual({
          version: 2,
          data: sampleStoreData("two"),
        });
      });

      it("refuses a write with a stale version and returns the current snapshot", async () => {
        await store.compareAndSet(0, sampleStoreData("one"));
        const stale = await store.compareAndSet(0, sampleStoreData("lost"));
        expect(stale).toEqual({ ok: false, current: { version: 1, data: sampleStoreData("one") } });
        expect(await store.read()).toEqual({ version: 1, data: sampleStoreData("one") });
      });

      it("refuses data that does not match the schema and keeps what was stored", async () => {
        await store.compareAndSet(0, sampleStoreData("one"));
        const invalid = {
          schemaVersion: 3,
          principals: {},
          profiles: { default: { baseUrl: 42 } },
          idempotency: {},
        };
        await expectCode(store.compareAndSet(1, invalid as unknown as StoreData), "INTERNAL");
        expect(await store.read()).toEqual({ version: 1, data: sampleStoreData("one") });
      });

      it("lets exactly one of many concurrent writers at the same version win", async () => {
        const second = await another();
        const writers = Array.from({ length: 8 }, (_, index) =>
          (index % 2 === 0 ? store : second).compareAndSet(0, sampleStoreData(`writer-${index}`)),
        );
        const results = await Promise.all(writers);
        const winners = results.filter((result) => result.ok);
        expect(winners).toHaveLength(1);
        const winner = winners[0];
        if (winner?.ok !== true) throw new Error("unreachable");
        expect(winner.snapshot.version).toBe(1);
        expect(await store.read()).toEqual(winner.snapshot);
        for (const loser of results.filter((result) => !result.ok)) {
          if (loser.ok) throw new Error("unreachable");
          expect(loser.current.version).toBe(1);
        }
      });

      it("read({ maxAgeMs }) sees this handle's writes at once, and a plain read sees everyone's", async () => {
        expect((await store.read({ maxAgeMs: 60_000 })).version).toBe(0);
        await store.compareAndSet(0, sampleStoreData("zero"));
        expect((await store.read()).version).toBe(1);
        await store.compareAndSet(1, sampleStoreData("one"));
        expect(await store.read({ maxAgeMs: 60_000 })).toEqual({
          version: 2,
          data: sampleStoreData("one"),
        });
        const other = await another();
        expect((await other.compareAndSet(2, sampleStoreData("two"))).ok).toBe(true);
        expect(await store.read()).toEqual({ version: 3, data: sampleStoreData("two") });
        expect((await other.compareAndSet(3, sampleStoreData("three"))).ok).toBe(true);
        expect(await store.read({ maxAgeMs: 0 })).toEqual({
          version: 4,
          data: sampleStoreData("three"),
        });
      });

      it("reads back object keys in the order written (a replayed reply repeats its bytes)", async () => {
        const data = sampleStoreData("one");
        const body = { zeta: 1, alpha: { second: true, first: [3, 2, 1] }, middle: "m" };
        data.idempotency[SLOT] = {
          requestHash: "a".repeat(64),
          createdAt: "2025-01-01T00:00:00.000Z",
          expiresAt: "2025-01-02T00:00:00.000Z",
          state: "done",
          result: body,
        };
        await store.compareAndSet(0, data);
        const read = (await (await another()).read()).data.idempotency[SLOT];
        expect(JSON.stringify(read?.state === "done" ? read.result : undefined)).toBe(
          JSON.stringify(body),
        );
      });

      it("keeps what it stores: a write copies its input, and reads are deep-frozen", async () => {
        const written = sampleStoreData("one");
        const result = await store.compareAndSet(0, written);
        expect(result.ok).toBe(true);
        // The caller's object stays the caller's (not frozen): changing it changes nothing stored.
        const operator = written.principals[SAMPLE_OPERATOR_ID];
        if (operator !== undefined) operator.name = "mutated";
        written.principals = sampleStoreData("mutated").principals;
        // What the store hands out is shared between readers: any write to it throws.
        const tryToChange = (data: StoreSnapshot["data"]) => () => {
          const record = data.principals[SAMPLE_OPERATOR_ID] as { name?: string } | undefined;
          if (record !== undefined) record.name = "mutated";
        };
        if (result.ok) expect(tryToChange(result.snapshot.data)).toThrow(TypeError);
        // A conflicting write hands back the current snapshot: frozen too.
        const conflict = await store.compareAndSet(0, sampleStoreData("two"));
        if (!conflict.ok) expect(tryToChange(conflict.current.data)).toThrow(TypeError);
        expect(conflict.ok).toBe(false);
        expect(tryToChange((await store.read()).data)).toThrow(TypeError);
        expect(await store.read()).toEqual({ version: 1, data: sampleStoreData("one") });
        expect(await (await another()).read()).toEqual({
          version: 1,
          data: sampleStoreData("one"),
        });
      });
    });

    describe("locks", () => {
      it("gives a named lock to one holder at a time, and other names stay free", async () => {
        const held = await store.lock("agent:7", { leaseMs: 10_000, waitMs: 0 });
        expect(held.name).toBe("agent:7");
        await expectCode(
          (await another()).lock("agent:7", { leaseMs: 10_000, waitMs: 50 }),
          "ROTATION_IN_PROGRESS",
        );
        const other = await store.lock("agent:8", { leaseMs: 10_000, waitMs: 0 });
        await other.release();
        await held.release();
      });

      it("waits for a held lock and gets it once released", async () => {
        const held = await store.lock("operator", { leaseMs: 10_000, waitMs: 0 });
        const waiting = store.lock("operator", { leaseMs: 10_000, waitMs: 10_000 });
        expect(await stillPendingAfter(waiting, 100)).toBe(true);
        await held.release();
        const next = await waiting;
        expect(next.name).toBe("operator");
        await next.release();
      });

      it("with read: true, hands back (if it does) what a read then would: every write made before the lock was granted", async () => {
        const second = await another();
        expect((await store.compareAndSet(0, sampleStoreData("one"))).ok).toBe(true);
        const lockOptions = { leaseMs: 10_000, waitMs: 10_000, read: true };
        // Taken at once: the store as this handle last wrote it.
        const first = await store.lock("operator", lockOptions);
        if (options.readsWithLock === true) expect(first.snapshot).toBeDefined();
        if (first.snapshot !== undefined) {
          expect(first.snapshot.version).toBe(1);
          expect(first.snapshot.data).toEqual((await store.read()).data);
        }
        await first.release();
        // Waited for: the holder's write, made while this handle waited, is in it.
        const holder = await second.lock("agent:8", { leaseMs: 10_000, waitMs: 0 });
        const waitingAgain = store.lock("agent:8", lockOptions);
        expect(await stillPendingAfter(waitingAgain, 50)).toBe(true);
        const current = await second.read();
        expect((await second.compareAndSet(current.version, sampleStoreData("two"))).ok).toBe(true);
        await holder.release();
        const granted = await waitingAgain;
        try {
          if (options.readsWithLock === true) expect(granted.snapshot).toBeDefined();
          if (granted.snapshot !== undefined) {
            expect(granted.snapshot.version).toBe(current.version + 1);
            expect(Object.values(granted.snapshot.data.principals)[0]?.name).toBe("two");
          }
        } finally {
          await granted.release();
        }
      });

      it("waits up to waitMs, then fails with ROTATION_IN_PROGRESS", async () => {
        const held = await store.lock("operator", { leaseMs: 10_000, waitMs: 0 });
        const waiting = store.lock("operator", { leaseMs: 10_000, waitMs: 600 });
        expect(await stillPendingAfter(waiting, 100)).toBe(true);
        await expectCode(waiting, "ROTATION_IN_PROGRESS");
        await held.release();
      });

      it("frees the lock once a holder that died without releasing loses its lease", async () => {
        const crash =
          fixture.crashLockHolder ??
          (async (lockName: string, leaseMs: number) => {
            await store.lock(lockName, { leaseMs, waitMs: 0 });
          });
        await crash("agent:9", 500);
        await expectCode(
          store.lock("agent:9", { leaseMs: 500, waitMs: 0 }),
          "ROTATION_IN_PROGRESS",
        );
        // The same leaseMs as the holder: shared backends judge a lease by the taker's setting.
        const taken = await store.lock("agent:9", { leaseMs: 500, waitMs: 15_000 });
        expect(taken.name).toBe("agent:9");
        await taken.release();
      });

      it("treats release as idempotent and never frees a later holder's lock", async () => {
        const first = await store.lock("agent:7", { leaseMs: 10_000, waitMs: 0 });
        await first.release();
        await first.release();
        const second: StoreLock = await store.lock("agent:7", { leaseMs: 10_000, waitMs: 0 });
        await first.release();
        await expectCode(
          store.lock("agent:7", { leaseMs: 10_000, waitMs: 50 }),
          "ROTATION_IN_PROGRESS",
        );
        await second.release();
      });
    });

    describe("audit log", () => {
      it("chains appended entries and reads them back verified", async () => {
        const appended = [
          await store.appendAudit(auditEvent("success")),
          await store.appendAudit(auditEvent("failure")),
          await (await another()).appendAudit(auditEvent("recovered")),
        ];
        expect(appended.map((entry) => entry.seq)).toEqual([1, 2, 3]);
        expect(appended[0]?.prevHash).toBe("0".repeat(64));
        expect(appended[1]?.prevHash).toBe(appended[0]?.hash);
        expect(appended[2]?.prevHash).toBe(appended[1]?.hash);
        expect(appended[2]).toMatchObject(auditEvent("recovered"));
        const read = await store.readAudit();
        expect(read).toEqual(appended);
        expect(verifyAuditChain(read)).toEqual({ ok: true, count: 3 });
      });

      it("chains to the log's real last entry when another handle appended in between", async () => {
        // Each handle may remember the entry it appended last (to skip reading the log's tail):
        // what it remembers must never be chained to once another handle has appended after it.
        const second = await another();
        const appenders = [store, store, second, store, second, second, store];
        for (const appender of appenders) await appender.appendAudit(auditEvent("success"));
        const read = await store.readAudit();
        expect(read.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(verifyAuditChain(read)).toEqual({ ok: true, count: 7 });
      });

      it("keeps the chain whole under concurrent appends", async () => {
        const second = await another();
        await Promise.all(
          Array.from({ length: 10 }, (_, index) =>
            (index % 2 === 0 ? store : second).appendAudit(auditEvent("success")),
          ),
        );
        const read = await store.readAudit();
        expect(read.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(verifyAuditChain(read)).toEqual({ ok: true, count: 10 });
      });

      it("detects tampering at the entry that was changed", async () => {
        for (const outcome of ["success", "failure", "success", "recovered"] as const) {
          await store.appendAudit(auditEvent(outcome));
        }
        const entries = await store.readAudit();
        const edited = entries.map((entry) =>
          entry.seq === 2 ? { ...entry, outcome: "success" as const } : entry,
        );
        expect(verifyAuditChain(edited)).toMatchObject({ ok: false, brokenAt: 2, count: 4 });
        const removed = entries.filter((entry) => entry.seq !== 3);
        expect(verifyAuditChain(removed)).toMatchObject({ ok: false, brokenAt: 3 });
        // The stored log itself was not changed by editing what was read.
        expect(verifyAuditChain(await store.readAudit())).toEqual({ ok: true, count: 4 });
      });
    });

    describe("watch", () => {
      it("notifies after a change and stops after unsubscribe", async () => {
        let calls = 0;
        const unsubscribe = store.watch(() => {
          calls += 1;
        });
        await store.compareAndSet(0, sampleStoreData("one"));
        expect(await eventually(() => calls >= 1)).toBe(true);
        unsubscribe();
        const before = calls;
        await store.compareAndSet(1, sampleStoreData("two"));
        await sleep(300);
        expect(calls).toBe(before);
      });

      it("notifies about a change written through another handle", async () => {
        const second = await another();
        let calls = 0;
        const unsubscribe = store.watch(() => {
          calls += 1;
        });
        await second.compareAndSet(0, sampleStoreData("elsewhere"));
        expect(await eventually(() => calls >= 1)).toBe(true);
        unsubscribe();
      });
    });

    if (options.appendsAuditWithWrite === true) {
      describeAuditWithWrite(() => store, another, sampleStoreData);
    } else {
      it("does not declare appendsAuditWithWrite (its suite would not run)", () => {
        expect(store.appendsAuditWithWrite).not.toBe(true);
      });
    }

    describe("health", () => {
      it("reports a fresh store healthy and writable", async () => {
        await store.checkWritable();
        await store.compareAndSet(0, sampleStoreData("one"));
        const health = await store.health();
        expect(health).toMatchObject({ ok: true, kind: store.kind, problems: [] });
        expect(health.location).toBe(store.location);
        expect(JSON.stringify(health)).not.toContain("lf_contract_test_key");
      });
    });
  });
}

import { describe, expect, it } from "vitest";
import { verifyAuditChain } from "./audit-chain.js";
import type { AuditEventInput, CredentialStore, StoreData } from "./types.js";

/**
 * The contract of `WriteOptions.audit`, for stores whose `appendsAuditWithWrite` is true (run
 * by `describeStoreContract` for those): the entries and the data are written together or not
 * at all, and the entries chain to the log's real last entry whoever appended it.
 */
export function describeAuditWithWrite(
  store: () => CredentialStore,
  another: () => Promise<CredentialStore>,
  sample: (marker: string) => StoreData,
): void {
  const event = (requestId: string): AuditEventInput => ({
    at: "2025-01-01T00:00:00.000Z",
    surface: "library",
    profile: "default",
    principal: "agent:7",
    action: "rotate",
    outcome: "success",
    newFingerprint: "fp:ba9876543210",
    requestId,
  });
  const requestIds = async (of: CredentialStore) =>
    (await of.readAudit()).map((entry) => entry.requestId);

  describe("audit entries appended with a write (WriteOptions.audit)", () => {
    it("declares appendsAuditWithWrite", () => {
      expect(store().appendsAuditWithWrite).toBe(true);
    });

    it("writes the data and appends the entries after the log's last one, write after write", async () => {
      const one = store();
      await one.appendAudit(event("before"));
      let version = (await one.compareAndSet(0, sample("one"))).ok ? 1 : 0;
      for (const marker of ["two", "three"]) {
        const written = await one.compareAndSet(version, sample(marker), {
          audit: [event(marker)],
          durable: false,
        });
        expect(written.ok).toBe(true);
        if (written.ok) version = written.snapshot.version;
      }
      const snapshot = await (await another()).read();
      expect(snapshot.data.principals[Object.keys(snapshot.data.principals)[0] ?? ""]?.name).toBe(
        "three",
      );
      const entries = await (await another()).readAudit();
      expect(entries.map((entry) => entry.requestId)).toEqual(["before", "two", "three"]);
      expect(verifyAuditChain(entries)).toEqual({ ok: true, count: 3 });
    });

    it("appends several entries of one write in order", async () => {
      const one = store();
      const written = await one.compareAndSet(0, sample("one"), {
        audit: [event("a"), event("b")],
      });
      expect(written.ok).toBe(true);
      const entries = await one.readAudit();
      expect(entries.map((entry) => entry.requestId)).toEqual(["a", "b"]);
      expect(verifyAuditChain(entries)).toEqual({ ok: true, count: 2 });
    });

    it("appends nothing when the compare-and-set is refused", async () => {
      const one = store();
      const second = await another();
      await one.appendAudit(event("before"));
      const first = await one.compareAndSet(0, sample("one"));
      expect(first.ok).toBe(true);
      // Another handle changes the row after this one wrote (and knows) version 1.
      const current = await second.read();
      expect((await second.compareAndSet(current.version, sample("elsewhere"))).ok).toBe(true);
      const refused = await one.compareAndSet(1, sample("stale"), {
        audit: [event("stale")],
        durable: false,
      });
      expect(refused.ok).toBe(false);
      expect(await requestIds(second)).toEqual(["before"]);
      const data = (await second.read()).data;
      expect(Object.values(data.principals)[0]?.name).toBe("elsewhere");
    });

    it("keeps the chain whole, each entry once, when two handles write with entries at once", async () => {
      const handles = [store(), await another()];
      expect((await handles[0]?.compareAndSet(0, sample("start")))?.ok).toBe(true);
      // Each handle writes its entries with compare-and-set, re-reading after a refusal.
      const writer = async (of: CredentialStore, name: string) => {
        for (let index = 0; index < 5; index++) {
          for (;;) {
            const current = await of.read();
            const written = await of.compareAndSet(current.version, sample(`${name}${index}`), {
              audit: [event(`${name}${index}`)],
              durable: false,
            });
            if (written.ok) break;
          }
          // A plain append between, so the handle's last entry is not always its write's.
          if (index % 2 === 1) await of.appendAudit(event(`${name}${index}-plain`));
        }
      };
      await Promise.all(handles.map((of, index) => writer(of as CredentialStore, `h${index}-`)));
      const entries = await store().readAudit();
      expect(verifyAuditChain(entries)).toEqual({ ok: true, count: 14 });
      const ids = entries.map((entry) => entry.requestId);
      expect(new Set(ids).size).toBe(14);
    });

    it("chains to the log's real last entry when another handle appended in between", async () => {
      const one = store();
      const second = await another();
      await one.appendAudit(event("mine"));
      const first = await one.compareAndSet(0, sample("one"));
      expect(first.ok).toBe(true);
      await second.appendAudit(event("theirs"));
      const written = await one.compareAndSet(1, sample("two"), {
        audit: [event("with-write")],
        durable: false,
      });
      expect(written.ok).toBe(true);
      const entries = await second.readAudit();
      expect(entries.map((entry) => entry.requestId)).toEqual(["mine", "theirs", "with-write"]);
      expect(verifyAuditChain(entries)).toEqual({ ok: true, count: 3 });
      // And the next plain append still chains after it.
      await one.appendAudit(event("after"));
      expect(verifyAuditChain(await second.readAudit())).toEqual({ ok: true, count: 4 });
    });
  });
}

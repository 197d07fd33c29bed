import fs from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agent } from "../principal.js";
import { CountingStore } from "../testing/counting-store.js";
import { type EngineFixture, startEngineFixture } from "./engine.test-helper.js";
import type { Rekey, RotationResult } from "./types.js";

/**
 * What one rotation asks of the store, counted by a real file store wrapped in a counter: the
 * principal is read once before the lock and once under it, each write starts from the
 * snapshot the one before wrote, and nothing re-reads the profile to learn a URL. (Counts,
 * not times: the time is bench/src/rotation.bench.mjs's.)
 */
let fixture: EngineFixture;
let counting: CountingStore;
let rekey: Rekey;
beforeEach(async () => {
  fixture = await startEngineFixture({ store: "file" });
  counting = new CountingStore(fixture.store);
  rekey = fixture.rekey({ store: counting });
  await rekey.register({ name: "ops" });
});
afterEach(async () => {
  await fixture.close();
});

/**
 * Runs `work` and returns what it asked of the store, and how many fsyncs the file store made
 * meanwhile: every `FileHandle#sync`/`#datasync` of this process, and every `fs.fsync` /
 * `fs.fdatasync` on node:fs's module object (what the store's writes and audit appends call),
 * counted and passed on.
 */
async function countsOf(work: () => Promise<unknown>) {
  const probe = await open(join(fixture.dir, ".fsync-probe"), "w");
  const prototype = Object.getPrototypeOf(probe) as Record<string, unknown>;
  await probe.close();
  const patched: [Record<string, unknown>, string][] = [
    [prototype, "sync"],
    [prototype, "datasync"],
    [fs as unknown as Record<string, unknown>, "fsync"],
    [fs as unknown as Record<string, unknown>, "fdatasync"],
  ];
  const originals = patched.map(([owner, name]) => owner[name] as (...args: unknown[]) => unknown);
  let fsyncs = 0;
  patched.forEach(([owner, name], index) => {
    const original = originals[index] as (...args: unknown[]) => unknown;
    owner[name] = function (this: unknown, ...args: unknown[]) {
      fsyncs++;
      return original.apply(this, args);
    };
  });
  counting.reset();
  try {
    await work();
  } finally {
    patched.forEach(([owner, name], index) => {
      owner[name] = originals[index];
    });
  }
  return { ...counting.snapshot(), fsyncs };
}

describe("store operations per rotation", () => {
  it("an operator rotation reads the store twice, writes three times and takes one lock", async () => {
    const counts = await countsOf(() => rekey.rotateKey({ force: true }));
    // Journal, key, journal cleared: each one compare-and-set that succeeds first time.
    expect(counts).toMatchObject({ reads: 2, writes: 3, locks: 1, auditAppends: 1 });
    // The journal and the key: file and directory each; the audit append: the file; the
    // journal's clearing: the file only (no directory fsync: a lost rename leaves the stored
    // journal, which the next run finishes). Was 7, with the clearing's directory fsync.
    expect(counts.fsyncs).toBe(6);
  });

  it("an agent rotation by agent_id costs the same", async () => {
    const created = await rekey.createAgent({ name: "worker" });
    const counts = await countsOf(() => rekey.rotateKey({ target: agent(created.agentId) }));
    expect(counts).toMatchObject({ reads: 2, writes: 3, locks: 1, auditAppends: 1, fsyncs: 6 });
  });

  it("a rotation through withIdempotency reads three times: once more, under its own lock", async () => {
    const run = async ({ requestId }: { requestId: string }) => {
      const result = (await rekey.rotateKey({ requestId, force: true })) as RotationResult;
      return { newFingerprint: result.newFingerprint };
    };
    const counts = await countsOf(() => rekey.withIdempotency("deploy-1", "{}", run));
    // Pending record, journal, key, journal cleared, the reply remembered.
    expect(counts).toMatchObject({ reads: 3, writes: 5, locks: 2, auditAppends: 1, fsyncs: 10 });
    // Its replay answers from one read, with no lock and no write.
    const replay = await countsOf(() => rekey.withIdempotency("deploy-1", "{}", run));
    expect(replay).toMatchObject({ reads: 1, writes: 0, locks: 0, auditAppends: 0, fsyncs: 0 });
  });

  it("a rotation refused for its cooldown writes nothing", async () => {
    await rekey.rotateKey({ force: true });
    let refusal: unknown;
    const counts = await countsOf(() =>
      rekey.rotateKey().catch((error: unknown) => {
        refusal = error;
      }),
    );
    expect(refusal).toMatchObject({ code: "COOLDOWN_ACTIVE" });
    expect(counts).toMatchObject({ reads: 2, writes: 0, auditAppends: 0, fsyncs: 0 });
  });
});

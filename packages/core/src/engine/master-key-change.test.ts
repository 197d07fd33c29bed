import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { parseMasterKey } from "../store/encryption/master-key.js";
import { createFileStore } from "../store/file-store.js";
import type { RotationStep } from "./context.js";
import { type EngineFixture, settle, startEngineFixture, storedKey } from "./engine.test-helper.js";

/**
 * Review finding 3: the master key of a file store changes under a running process (`rekey
 * store rekey-master` from another process). The store is the real file store in a temp dir;
 * the other process is another handle on the same directory.
 */

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** Engine hooks that run `work` once, right after the faucet issued the new key. */
function afterUpstreamReplied(work: () => Promise<void>) {
  let done = false;
  return {
    async afterStep(step: RotationStep) {
      if (step !== "upstream-replied" || done) return;
      done = true;
      await work();
    },
  };
}

describe("a master key that changes while a process runs", () => {
  it("a rotation in flight during `rekey-master --new-key generate` stores its key under the new master key", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const dir = fixture.dir;
    const rekey = fixture.rekey({
      storeRetryMs: 1_000,
      hooks: afterUpstreamReplied(async () => {
        const other = createFileStore({ dir, env: {} });
        await other.resealUnder("generate");
        await other.close();
      }),
    });
    const rotation = await rekey.rotateKey();
    expect(rotation.newFingerprint).not.toBe(rotation.oldFingerprint);
    // A fresh handle (a new process) opens the store with the new master.key alone.
    const fresh = createFileStore({ dir, env: {} });
    try {
      expect((await storedKey(fresh, "operator"))?.fingerprint).toBe(rotation.newFingerprint);
    } finally {
      await fresh.close();
    }
    // The running process keeps working: status reads the store it had cached a key for.
    expect((await rekey.status()).hasKey).toBe(true);
    expect(await readdir(fixture.rescueDir).catch(() => [])).toEqual([]);
  });

  it("a store locked by a master key that does not open it: the key goes to a rescue file at once, and the error says the store is locked", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const dir = fixture.dir;
    const rekey = fixture.rekey({
      // Long enough that a retried refusal would outlast the test's timeout.
      storeRetryMs: 600_000,
      hooks: afterUpstreamReplied(async () => {
        // Another process re-keys the store to a key given in its environment
        // (`rekey-master --new-key env:VAR`), which this process was never given.
        const other = createFileStore({ dir, env: {} });
        await other.resealUnder(parseMasterKey(randomBytes(32).toString("base64"), "VAR"));
        await other.close();
      }),
    });
    const error = (await settle(rekey.rotateKey())) as {
      code?: string;
      message: string;
      hint?: string;
      details?: Record<string, unknown>;
    };
    expect(error.code).toBe("STORE_LOCKED");
    expect(error.message).toMatch(
      /^The operator was rotated \(new key fp:[0-9a-f]+\).*master key/i,
    );
    expect(error.message).toContain("the new key was written to");
    expect(error.hint).toContain("master key");
    expect(error.hint).not.toContain("disk space");
    const rescueFile = String(error.details?.rescueFile);
    expect(rescueFile.startsWith(fixture.rescueDir)).toBe(true);
    expect(await readdir(fixture.rescueDir)).toHaveLength(1);
  }, 30_000);
});

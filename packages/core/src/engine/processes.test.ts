import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openKey } from "../store/encryption/sealed-key.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";
import {
  runRotationChild,
  runRotationChildrenAtOnce,
  startStalledRotation,
} from "./rotate-child.test-helper.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("rotations in separate processes sharing a file store", () => {
  it("a process killed after the faucet rotated is recovered by the next one", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const rekey = fixture.rekey();
    await rekey.register({});
    const old = await storedKey(fixture.store, "operator");

    const killed = await runRotationChild({
      dir: fixture.dir,
      url: fixture.sandbox.url,
      crashAfter: "upstream-replied",
    });
    expect(killed.signal).toBe("SIGKILL");
    expect(fixture.sandbox.stats().rotations).toBe(1);

    // The dead process still "holds" the rotation lock until its lease runs out; the next
    // engine waits for it, then replays the request_id.
    const next = fixture.rekey({ lockLeaseMs: 2000 });
    const status = await next.status();
    expect(status.pendingRotation).toBeUndefined();
    expect(status.fingerprint).not.toBe(old?.fingerprint);
    await expect(next.whoami()).resolves.toMatchObject({ type: "operator" });
    expect(fixture.sandbox.stats().rotations).toBe(1);
  }, 30_000);

  it("a rotation stalled past its lock's lease, its journal resolved meanwhile by another process, is audited once", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    // Stopped after `verified`, before the write that clears its journal with the entry.
    const stalled = await startStalledRotation({
      dir: fixture.dir,
      url: fixture.sandbox.url,
      stallAfter: "verified",
      force: true,
    });
    // Past the stopped process's lease (2 s): this process takes its lock and resolves the
    // `stored` journal, writing the rotation's entry.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const resolver = fixture.rekey({ lockLeaseMs: 2000 });
    expect((await resolver.status()).pendingRotation).toBeUndefined();
    stalled.resume();
    const outcome = await stalled.done;
    expect(outcome.code, outcome.output).toBe(0);
    const { requestId } = JSON.parse(outcome.output) as { requestId: string };
    const entries = (await fixture.store.readAudit()).filter(
      (entry) => entry.requestId === requestId,
    );
    expect(entries).toHaveLength(1);
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect((await fixture.rekey().status()).pendingRotation).toBeUndefined();
  }, 30_000);

  it("four processes rotating at once make one upstream rotation per generation", async () => {
    // All four processes start rotating at the same moment (a barrier), and each generation's
    // rotation is held 3 s at the faucet so that all four have read the old key before the
    // first one finishes.
    const generations = 3;
    const current = await startEngineFixture({
      store: "file",
      sandbox: {
        faults: Array.from({ length: generations }, (_, index) => ({
          action: "regenerate_operator_key",
          nth: index + 1,
          kind: "delay" as const,
          delayMs: 3000,
        })),
      },
    });
    fixture = current;
    const rekey = current.rekey();
    await rekey.register({});

    for (let generation = 1; generation <= generations; generation++) {
      const outcomes = await runRotationChildrenAtOnce(4, {
        dir: current.dir,
        url: current.sandbox.url,
        force: true,
      });
      const results = outcomes.map(
        (outcome) => JSON.parse(outcome.output) as { newFingerprint?: string; shared?: boolean },
      );
      expect(outcomes.map((outcome) => outcome.code)).toEqual([0, 0, 0, 0]);
      expect(fixture.sandbox.stats().rotations).toBe(generation);
      expect(new Set(results.map((result) => result.newFingerprint)).size).toBe(1);
      expect(results.filter((result) => result.shared === false)).toHaveLength(1);

      const raw = JSON.parse(await readFile(join(fixture.dir, "credentials.json"), "utf8"));
      expect(raw).toBeTypeOf("object");
      const stored = await storedKey(fixture.store, "operator");
      expect(stored?.fingerprint).toBe(results[0]?.newFingerprint);
      await expect(fixture.client.whoami(openKey(stored?.key ?? ""))).resolves.toMatchObject({
        type: "operator",
      });
    }
  }, 60_000);
});

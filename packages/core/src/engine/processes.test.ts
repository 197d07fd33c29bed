import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openKey } from "../store/encryption/sealed-key.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";
import { runRotationChild, runRotationChildrenAtOnce } from "./rotate-child.test-helper.js";

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

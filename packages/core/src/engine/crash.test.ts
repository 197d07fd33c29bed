import { stat } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError, type RekeyError } from "../errors.js";
import { agent } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type { CredentialStore } from "../store/types.js";
import type { RotationStep } from "./context.js";
import {
  Crash,
  crashingAt,
  type EngineFixture,
  intentOf,
  refusingWrites,
  settle,
  startEngineFixture,
  storedKey,
} from "./engine.test-helper.js";
import type { RotationResult } from "./types.js";

/**
 * A process that dies mid-rotation leaves the store exactly as it was at that step. Throwing
 * from the step hook stops the engine there without any clean-up of the store (only the lock
 * is released, which a dead process's lease also is); a second engine on the same store plays
 * the next process. The child-process tests in `processes.test.ts` kill a real process too.
 */
let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe.each([true, false])("crash recovery (request_id honoured: %s)", (requestIdSupport) => {
  it("crash before the upstream call: the rotation never happened, the old key stays", async () => {
    fixture = await startEngineFixture({ sandbox: { requestIdSupport } });
    const crashing = fixture.rekey({ hooks: crashingAt("intent-written") });
    await crashing.register({});
    const old = await storedKey(fixture.store, "operator");
    expect(await settle(crashing.rotateKey())).toBeInstanceOf(Crash);
    expect(await intentOf(fixture.store, "operator")).toMatchObject({
      phase: "requested",
    });

    const next = fixture.rekey();
    const status = await next.status();
    expect(status.pendingRotation).toBeUndefined();
    expect(status.fingerprint).toBe(old?.fingerprint);
    expect(fixture.sandbox.stats().rotations).toBe(0);
    await expect(fixture.client.whoami(openKey(old?.key ?? ""))).resolves.toMatchObject({
      type: "operator",
    });
    expect((await next.history()).at(-1)).toMatchObject({
      action: "resolve",
      outcome: "not_rotated",
    });
  });

  it("crash after the upstream call, before the store write", async () => {
    fixture = await startEngineFixture({ sandbox: { requestIdSupport } });
    const crashing = fixture.rekey({ hooks: crashingAt("upstream-replied") });
    await crashing.register({});
    const old = await storedKey(fixture.store, "operator");
    expect(await settle(crashing.rotateKey())).toBeInstanceOf(Crash);
    expect(fixture.sandbox.stats().rotations).toBe(1);
    await expect(fixture.client.whoami(openKey(old?.key ?? ""))).rejects.toMatchObject({
      code: "UNAUTHORIZED",
    });

    const next = fixture.rekey();
    if (requestIdSupport) {
      const status = await next.status();
      expect(status.pendingRotation).toBeUndefined();
      expect(status.fingerprint).not.toBe(old?.fingerprint);
      const recovered = await storedKey(fixture.store, "operator");
      await expect(fixture.client.whoami(openKey(recovered?.key ?? ""))).resolves.toMatchObject({
        type: "operator",
      });
      expect(fixture.sandbox.stats().rotations).toBe(1);
      expect((await next.history()).at(-1)).toMatchObject({
        action: "resolve",
        outcome: "recovered",
      });
    } else {
      // Any use of the key reports the loss; status shows it as its keyLost record.
      const error = (await settle(next.whoami())) as RekeyError;
      expect(isRekeyError(error, "KEY_LOST")).toBe(true);
      expect(error.details.recovery).toMatch(/rekey recover/);
      expect((await next.history()).at(-1)).toMatchObject({ outcome: "key_lost" });
      // Reported once, recorded in the audit log; the store no longer pretends to hold a key.
      expect((await next.status()).hasKey).toBe(false);
    }
  });

  it.each<RotationStep>(["key-stored", "verified"])(
    "crash after %s: the stored new key is verified and the intent cleared",
    async (step) => {
      fixture = await startEngineFixture({ sandbox: { requestIdSupport } });
      const crashing = fixture.rekey({ hooks: crashingAt(step) });
      await crashing.register({});
      expect(await settle(crashing.rotateKey())).toBeInstanceOf(Crash);
      const stored = await storedKey(fixture.store, "operator");

      const next = fixture.rekey();
      const resolutions = await next.resolvePending();
      expect(resolutions).toEqual([
        expect.objectContaining({ outcome: "verified", newFingerprint: stored?.fingerprint }),
      ]);
      expect((await next.status()).lastRotation).toMatchObject({ verified: true });
      await expect(next.whoami()).resolves.toMatchObject({
        type: "operator",
        fingerprint: stored?.fingerprint,
      });
      expect(fixture.sandbox.stats().rotations).toBe(1);
    },
  );

  it("the reply is lost after the faucet committed (connection dropped)", async () => {
    fixture = await startEngineFixture({
      sandbox: {
        requestIdSupport,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      },
    });
    const rekey = fixture.rekey();
    await rekey.register({});
    const outcome = await settle(rekey.rotateKey());
    if (requestIdSupport) {
      expect((outcome as RotationResult).newFingerprint).toBe(
        (await storedKey(fixture.store, "operator"))?.fingerprint,
      );
      await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator" });
    } else {
      expect(isRekeyError(outcome, "KEY_LOST")).toBe(true);
    }
    expect(fixture.sandbox.stats().rotations).toBe(1);
  });

  it("an agent's lost reply comes back through its operator", async () => {
    fixture = await startEngineFixture({ sandbox: { requestIdSupport } });
    const operator = fixture.rekey();
    await operator.register({});
    const { agentId } = await operator.createAgent({ name: "worker" });
    const crashing = fixture.rekey({ hooks: crashingAt("upstream-replied") });
    expect(await settle(crashing.rotateKey({ target: agent(agentId) }))).toBeInstanceOf(Crash);

    const next = fixture.rekey();
    const [resolution] = await next.resolvePending();
    expect(resolution?.outcome).toBe("recovered");
    const stored = await storedKey(fixture.store, agentId);
    await expect(fixture.client.whoami(openKey(stored?.key ?? ""))).resolves.toMatchObject({
      type: "agent",
      id: agentId,
    });
    // With request_id the faucet replays the first reply; without it the operator rotates again.
    expect(fixture.sandbox.stats().rotations).toBe(requestIdSupport ? 1 : 2);
  });
});

/**
 * A disk that fills up at a chosen moment: the real stores cannot be made to fail on cue, so
 * this wraps one (a real implementation of the interface) and refuses writes while `failing`.
 */
function createFlakyStore(store: CredentialStore): {
  store: CredentialStore;
  failWrites(on: boolean): void;
} {
  let failing = false;
  const flaky = refusingWrites(store, () => failing);
  return {
    store: flaky,
    failWrites(on) {
      failing = on;
    },
  };
}

describe("a failing store", () => {
  it("refuses to start a rotation when the store cannot be written, before any upstream call", async () => {
    fixture = await startEngineFixture();
    const flaky = createFlakyStore(fixture.store);
    const rekey = fixture.rekey({ store: flaky.store });
    await rekey.register({});
    flaky.failWrites(true);
    const error = await settle(rekey.rotateKey());
    expect(isRekeyError(error, "STORE_UNAVAILABLE")).toBe(true);
    expect(fixture.sandbox.stats().rotations).toBe(0);
    expect(fixture.sandbox.stats().calls.regenerate_operator_key ?? 0).toBe(0);
  });

  it("a store that refuses the new key keeps the rotation journaled and the key in a rescue file; it is taken back once the store works", async () => {
    fixture = await startEngineFixture({ sandbox: { requestIdSupport: false } });
    const flaky = createFlakyStore(fixture.store);
    const rekey = fixture.rekey({
      store: flaky.store,
      storeRetryMs: 300,
      hooks: {
        afterStep(step) {
          if (step === "upstream-replied") flaky.failWrites(true);
        },
      },
    });
    await rekey.register({});
    const error = (await settle(rekey.rotateKey())) as RekeyError;
    expect(isRekeyError(error, "STORE_UNAVAILABLE")).toBe(true);
    // The issued key was not thrown away: it waits in a rescue file outside the store.
    const rescueFile = String(error.details.rescueFile);
    expect(rescueFile.startsWith(fixture.rescueDir)).toBe(true);
    expect(error.hint).toContain(`rekey rescue import ${rescueFile}`);
    expect((await stat(rescueFile)).mode & 0o777).toBe(0o600);
    expect((await stat(fixture.rescueDir)).mode & 0o777).toBe(0o700);
    expect(await intentOf(fixture.store, "operator")).toMatchObject({
      phase: "requested",
    });

    flaky.failWrites(false);
    const [resolution] = await fixture.rekey().resolvePending();
    expect(resolution?.outcome).toBe("recovered");
    await expect(fixture.rekey().whoami()).resolves.toMatchObject({ type: "operator" });
    // Picked up from the rescue file (no second rotation, even without request_id), then removed.
    expect(fixture.sandbox.stats().rotations).toBe(1);
    await expect(stat(rescueFile)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

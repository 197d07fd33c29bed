import { readdir } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import type { RekeyError } from "../errors.js";
import type { CredentialStore } from "../store/types.js";
import {
  type EngineFixture,
  intentsIn,
  refusingWrites,
  startEngineFixture,
} from "./engine.test-helper.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** `store`, refusing every compare-and-set after the first `allowed` (a disk that fills up). */
function fillingStore(store: CredentialStore, allowed: number) {
  let writes = 0;
  let refusing = true;
  const filling = refusingWrites(store, () => {
    writes++;
    return refusing && writes > allowed;
  });
  return {
    store: filling,
    repair() {
      refusing = false;
    },
  };
}

describe("recover", () => {
  it("goes the way of a rotation: a store that refuses the recovered key leaves it in a rescue file and the journal, never nowhere", async () => {
    fixture = await startEngineFixture();
    let recoveryCode = "";
    await fixture.rekey().register({
      onRecoveryCode: async (code) => {
        recoveryCode = code;
      },
    });
    // The journal entry is written; the recovered key is refused.
    const filling = fillingStore(fixture.store, 1);
    const recovering = fixture.rekey({ store: filling.store, storeRetryMs: 300 });
    const error = await recovering.recover(recoveryCode).then(
      () => undefined,
      (caught: unknown) => caught as RekeyError,
    );
    expect(error).toMatchObject({ code: "STORE_UNAVAILABLE" });
    expect(String(error?.details.rescueFile).startsWith(fixture.rescueDir)).toBe(true);
    expect(await intentsIn(fixture.store)).toHaveLength(1);

    filling.repair();
    const next = fixture.rekey();
    const [resolution] = await next.resolvePending();
    expect(resolution?.outcome).toBe("recovered");
    await expect(next.whoami()).resolves.toMatchObject({ type: "operator" });
    expect(await intentsIn(fixture.store)).toEqual([]);
    expect(await readdir(fixture.rescueDir)).toEqual([]);
    expect((await next.status()).lastRotation).toMatchObject({ verified: true });
  });

  it("records the recovery as the rotation it is: journal cleared, verified, audited once", async () => {
    fixture = await startEngineFixture();
    let recoveryCode = "";
    const rekey = fixture.rekey();
    await rekey.register({
      onRecoveryCode: async (code) => {
        recoveryCode = code;
      },
    });
    const result = await rekey.recover(recoveryCode);
    expect(result).toMatchObject({ verified: true, shared: false });
    expect(Date.parse(result.cooldownUntil) - fixture.clock.now()).toBe(60 * 60_000);
    expect(await intentsIn(fixture.store)).toEqual([]);
    const status = await rekey.status();
    expect(status.fingerprint).toBe(result.newFingerprint);
    // A request id like a rotation's, the same in the result, the record and the audit log.
    expect(result.requestId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    expect(status.lastRotation).toMatchObject({ requestId: result.requestId, verified: true });
    const entries = (await rekey.history()).filter((entry) => entry.action === "recover");
    expect(entries).toHaveLength(1);
    expect(entries[0]?.requestId).toBe(result.requestId);
  });

  it("gives a recovery into an empty store a request id too, as in its audit entry", async () => {
    fixture = await startEngineFixture();
    // Registered elsewhere: this store holds no key, so there is nothing to journal.
    const { recoveryCode } = await fixture.client.register({});
    const rekey = fixture.rekey();
    const result = await rekey.recover(recoveryCode);
    expect(result.requestId).not.toBe("recover");
    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await rekey.status()).lastRotation?.requestId).toBe(result.requestId);
    const [entry] = (await rekey.history()).filter((item) => item.action === "recover");
    expect(entry?.requestId).toBe(result.requestId);
  });

  it("audits a wrong recovery code when the operator's key is lost (no journal to clear)", async () => {
    fixture = await startEngineFixture({
      sandbox: {
        requestIdSupport: false,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      },
    });
    await fixture.rekey().register({});
    const lost = await fixture
      .rekey()
      .rotateKey()
      .then(
        () => undefined,
        (error: RekeyError) => error,
      );
    expect(lost?.code).toBe("KEY_LOST");
    const rekey = fixture.rekey();
    const refused = await rekey.recover("lfr_wrongwrongwrongwrongwrongwrongwrongwrongwro").then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("UNAUTHORIZED");
    const failures = (await rekey.history()).filter(
      (entry) => entry.action === "recover" && entry.outcome === "failure",
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ errorCode: "UNAUTHORIZED", principal: "operator:1" });
  });

  it("audits a wrong recovery code on a profile that holds no operator yet", async () => {
    fixture = await startEngineFixture();
    const rekey = fixture.rekey({ profile: "empty" });
    const refused = await rekey.recover("lfr_wrongwrongwrongwrongwrongwrongwrongwrongwro").then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("UNAUTHORIZED");
    const failures = (await rekey.history()).filter(
      (entry) => entry.action === "recover" && entry.outcome === "failure",
    );
    expect(failures).toMatchObject([{ errorCode: "UNAUTHORIZED", principal: "operator" }]);
  });

  it("inside the operator's withdrawal cooldown is refused (COOLDOWN_ACTIVE) unless forced, before the faucet", async () => {
    fixture = await startEngineFixture();
    let recoveryCode = "";
    const rekey = fixture.rekey();
    await rekey.register({
      onRecoveryCode: async (code) => {
        recoveryCode = code;
      },
    });
    const rotated = (await rekey.rotateKey()) as { newFingerprint: string; cooldownUntil: string };
    const recoversBefore = fixture.sandbox.stats().calls.recover ?? 0;
    const refused = await rekey.recover(recoveryCode).then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("COOLDOWN_ACTIVE");
    expect(refused?.details.cooldownUntil).toBe(rotated.cooldownUntil);
    expect(fixture.sandbox.stats().calls.recover ?? 0).toBe(recoversBefore);
    expect(await intentsIn(fixture.store)).toEqual([]);
    expect((await rekey.status()).fingerprint).toBe(rotated.newFingerprint);

    const forced = await rekey.recover(recoveryCode, { force: true });
    expect(forced.newFingerprint).not.toBe(rotated.newFingerprint);
    expect(fixture.sandbox.stats().calls.recover ?? 0).toBe(recoversBefore + 1);
  });
});

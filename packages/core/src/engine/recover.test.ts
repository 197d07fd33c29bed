import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isRekeyError, type RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { createFileStore } from "../store/file-store.js";
import type { CredentialStore } from "../store/types.js";
import {
  type EngineFixture,
  intentsIn,
  refusingWrites,
  startEngineFixture,
  storedKey,
  withRecoveryFaults,
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
  it("a lost key (KEY_LOST) inside a cooldown is recovered without force", async () => {
    fixture = await startEngineFixture({
      sandbox: {
        requestIdSupport: false,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      },
    });
    let recoveryCode = "";
    await fixture.rekey().register({
      onRecoveryCode: async (code) => {
        recoveryCode = code;
      },
    });
    // A first recovery starts the cooldown; a forced rotation inside it loses the key.
    await fixture.rekey().recover(recoveryCode);
    const lost = await fixture
      .rekey()
      .rotateKey({ force: true })
      .then(
        () => undefined,
        (error: RekeyError) => error,
      );
    expect(lost?.code).toBe("KEY_LOST");
    const rekey = fixture.rekey();
    expect((await rekey.status()).keyLost).toBeDefined();
    const recovered = await rekey.recover(recoveryCode);
    await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
    expect((await rekey.status()).fingerprint).toBe(recovered.newFingerprint);
  });
});

describe("recover with another account's recovery code", () => {
  /** Operator 1 in the profile (its key stored), operator 2 registered elsewhere. */
  async function twoAccounts(options: Parameters<typeof startEngineFixture>[0] = {}) {
    fixture = await startEngineFixture(options);
    await fixture.rekey().register({});
    const other = await fixture.client.register({ name: "someone else" });
    return { fixture, other };
  }

  /** Everything the profile's operator 1 must still be after a refused foreign recovery. */
  async function expectProfileUntouched(current: EngineFixture, keyBefore: string | undefined) {
    const stored = await storedKey(current.store, "operator");
    expect(stored?.key === undefined ? undefined : openKey(stored.key)).toBe(keyBefore);
    expect(await intentsIn(current.store)).toEqual([]);
    const { data } = await current.store.read();
    expect(Object.keys(data.principals).some((id) => id.endsWith("#operator:2"))).toBe(false);
    expect(data.profiles.default?.operator).toBe("operator:1");
  }

  it("refuses to file operator 2's new key as operator 1's: rescue file, audit, CONFIG_INVALID", async () => {
    const { fixture: current, other } = await twoAccounts();
    const before = await storedKey(current.store, "operator");
    const keyBefore = before?.key === undefined ? undefined : openKey(before.key);
    const rekey = current.rekey();
    const refused = await rekey.recover(other.recoveryCode).then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("CONFIG_INVALID");
    expect(refused?.message).toContain("operator 2");
    expect(refused?.hint).toContain("rescue import");
    await expectProfileUntouched(current, keyBefore);
    // Operator 1's key was never touched upstream.
    await expect(current.client.whoami(keyBefore ?? "")).resolves.toMatchObject({ id: 1 });

    // Operator 2's old key is dead; its new one is durable, in a rescue file of its own.
    await expect(current.client.whoami(other.apiKey)).rejects.toMatchObject({
      code: "UNAUTHORIZED",
    });
    const rescueFile = String(refused?.details.rescueFile);
    const rescued = JSON.parse(await readFile(rescueFile, "utf8")) as {
      principal: string;
      key: string;
      source: string;
    };
    expect(rescued).toMatchObject({ principal: "operator:2", source: "recover" });
    await expect(current.client.whoami(rescued.key)).resolves.toMatchObject({
      type: "operator",
      id: 2,
    });
    expect(await rekey.rescuedKeys()).toEqual([
      expect.objectContaining({ principal: "operator:2", fingerprint: fingerprint(rescued.key) }),
    ]);
    const entries = (await rekey.history()).filter((entry) => entry.action === "recover");
    expect(entries).toEqual([
      expect.objectContaining({
        principal: "operator:2",
        outcome: "failure",
        errorCode: "CONFIG_INVALID",
        newFingerprint: fingerprint(rescued.key),
      }),
    ]);

    // Nothing is left to resolve, and resolving does not take operator 2's key for operator 1.
    expect(await current.rekey().resolvePending()).toEqual([]);
    await expectProfileUntouched(current, keyBefore);
    expect(await readdir(current.rescueDir)).toEqual([rescueFile.split("/").pop()]);

    // Imported into a profile of its own, operator 2 works from there.
    const bob = current.rekey({ profile: "bob" });
    await bob.importRescue(rescueFile);
    await expect(bob.whoami()).resolves.toMatchObject({ type: "operator", id: 2 });
  });

  it("with no rescue file possible, replaces operator 2's dead key in the store beside, and says so only when it did", async () => {
    const { fixture: current, other } = await twoAccounts({ store: "file" });
    // Operator 2 is held in the same store, by a profile of its own.
    await current.rekey({ profile: "bob" }).login(other.apiKey);
    // A rescue directory that cannot be made (its parent is a file): the store is all there is.
    const blocked = join(current.dir, "not-a-dir");
    await writeFile(blocked, "");
    const rekey = current.rekey({ env: { REKEY_RESCUE_DIR: join(blocked, "rescue") } });
    const refused = await rekey.recover(other.recoveryCode).then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("CONFIG_INVALID");
    expect(refused?.message).toContain("the store, beside this profile");
    // What the message says is true: bob's record holds operator 2's new, working key.
    await expect(current.client.whoami(other.apiKey)).rejects.toMatchObject({
      code: "UNAUTHORIZED",
    });
    await expect(current.rekey({ profile: "bob" }).whoami()).resolves.toMatchObject({
      type: "operator",
      id: 2,
    });
  });

  it("refuses it too when operator 1's key is lost (KEY_LOST): the loss stays on operator 1", async () => {
    const { fixture: current, other } = await twoAccounts({
      sandbox: {
        requestIdSupport: false,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      },
    });
    const lost = await current
      .rekey()
      .rotateKey()
      .then(
        () => undefined,
        (error: RekeyError) => error,
      );
    expect(lost?.code).toBe("KEY_LOST");
    const rekey = current.rekey();
    const refused = await rekey.recover(other.recoveryCode).then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("CONFIG_INVALID");
    await expectProfileUntouched(current, undefined);
    expect((await rekey.status()).keyLost).toBeDefined();
    expect(String(refused?.details.rescueFile).startsWith(join(current.rescueDir))).toBe(true);
  });

  it("a journal left behind (the audit append failed) resolves as not rotated, never with operator 2's rescued key", async () => {
    // The real file store, wrapped only to fail the recovery's audit append on cue.
    const { fixture: current, other } = await twoAccounts({ store: "file" });
    const before = await storedKey(current.store, "operator");
    const keyBefore = before?.key === undefined ? undefined : openKey(before.key);
    const failingAudit = withRecoveryFaults(current.store, { refuseRecoverEntry: true });
    const refused = await current
      .rekey({ store: failingAudit })
      .recover(other.recoveryCode)
      .then(
        () => undefined,
        (error: RekeyError) => error,
      );
    expect(refused?.code).toBe("STORE_UNAVAILABLE");
    // Operator 1's journal is still there, and operator 2's key is in a rescue file under the
    // same request id.
    expect(await intentsIn(current.store)).toHaveLength(1);
    const [file] = await readdir(current.rescueDir);
    expect(file).toMatch(/^operator-2-/);

    const [resolution] = await current.rekey().resolvePending();
    expect(resolution?.outcome).toBe("not_rotated");
    await expectProfileUntouched(current, keyBefore);
    expect(await readdir(current.rescueDir)).toEqual([file]);
  });
});

describe("recover with another account's code, its audit entry owed by the rescue file", () => {
  /** Operator 1's profile recovers with operator 2's code; the recovery's audit append fails. */
  async function failedAppend() {
    fixture = await startEngineFixture({ store: "file" });
    const current = fixture;
    await current.rekey().register({});
    const other = await current.client.register({ name: "someone else" });
    const failingAudit = withRecoveryFaults(current.store, { refuseRecoverEntry: true });
    const refused = await current
      .rekey({ store: failingAudit })
      .recover(other.recoveryCode)
      .then(
        () => undefined,
        (error: RekeyError) => error,
      );
    expect(refused?.code).toBe("STORE_UNAVAILABLE");
    const [name] = await readdir(current.rescueDir);
    const file = join(current.rescueDir, name ?? "");
    const owed = JSON.parse(await readFile(file, "utf8")) as {
      pendingAudit?: unknown;
      fingerprint: string;
      requestId: string;
    };
    // Who recovered; the entry itself is made from the file's fields (operator 2's key).
    expect(owed.pendingAudit).toEqual({ profile: "default", surface: "library" });
    expect(owed).toMatchObject({ principal: "operator:2" });
    return { current, file, owed };
  }

  const recoveries = async (current: EngineFixture) =>
    (await current.rekey().history()).filter((entry) => entry.action === "recover");

  it("the next listing (status, doctor) writes the missing entry, once, and the file stops owing it", async () => {
    const { current, file, owed } = await failedAppend();
    expect(await recoveries(current)).toEqual([]);

    const rekey = current.rekey();
    expect(await rekey.rescuedKeys()).toEqual([
      expect.objectContaining({ principal: "operator:2", fingerprint: owed.fingerprint }),
    ]);
    const expected = expect.objectContaining({
      principal: "operator:2",
      outcome: "failure",
      errorCode: "CONFIG_INVALID",
      newFingerprint: owed.fingerprint,
      requestId: owed.requestId,
      profile: "default",
      surface: "library",
    });
    expect(await recoveries(current)).toEqual([expected]);
    const settled = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    expect(settled.pendingAudit).toBeUndefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    // Listed again and imported: no second entry.
    await rekey.rescuedKeys();
    await current.rekey({ profile: "bob" }).importRescue(file);
    expect(await recoveries(current)).toEqual([expected]);
    expect(verifyAuditChain(await current.store.readAudit()).ok).toBe(true);
  });

  it("an import of the file writes the missing entry first", async () => {
    const { current, file, owed } = await failedAppend();
    const bob = current.rekey({ profile: "bob" });
    await bob.importRescue(file);
    await expect(bob.whoami()).resolves.toMatchObject({ type: "operator", id: 2 });
    const entries = (await bob.history()).filter((entry) => entry.requestId === owed.requestId);
    expect(entries.map((entry) => [entry.action, entry.principal])).toEqual([
      ["recover", "operator:2"],
      ["import", "operator:2"],
    ]);
  });

  it("a recovery that finished wrote its entry and left a file that owes none", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const other = await fixture.client.register({ name: "someone else" });
    const refused = await fixture
      .rekey()
      .recover(other.recoveryCode)
      .then(
        () => undefined,
        (error: RekeyError) => error,
      );
    const file = String(refused?.details.rescueFile);
    const written = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    expect(written.pendingAudit).toBeUndefined();
    expect(written.rescueVersion).toBe(2);
    expect(await recoveries(fixture)).toHaveLength(1);
    await fixture.rekey().rescuedKeys();
    expect(await recoveries(fixture)).toHaveLength(1);
  });

  it("cannot be made to say anything else: a pendingAudit with fields of its own, or in a version 1 file, is not a rescue file", async () => {
    const { current, file } = await failedAppend();
    const body = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    for (const crafted of [
      {
        ...body,
        pendingAudit: {
          ...(body.pendingAudit as object),
          principal: "operator:1",
          errorCode: "ANYTHING",
        },
      },
      { ...body, rescueVersion: 1, store: undefined },
    ]) {
      await writeFile(file, JSON.stringify(crafted), { mode: 0o600 });
      expect(await current.rekey().rescuedKeys()).toEqual([]);
      const refused = await current
        .rekey()
        .importRescue(file)
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(isRekeyError(refused, "INVALID_INPUT")).toBe(true);
    }
    expect(await recoveries(current)).toEqual([]);
  });

  it("is written only in the log of the store the file names, never by another store that holds its account", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const current = fixture;
    await current.rekey().register({});
    // Operator 2's own home, which holds its account.
    const otherDir = await mkdtemp(join(tmpdir(), "rekey-other-account-"));
    const other = createFileStore({ dir: otherDir, env: {} });
    try {
      let code = "";
      await current.rekey({ store: other }).register({
        onRecoveryCode: async (recoveryCode) => {
          code = recoveryCode;
        },
      });
      let appending: () => void = () => {};
      const started = new Promise<void>((resolve) => {
        appending = resolve;
      });
      const recovering = current
        .rekey({
          store: withRecoveryFaults(current.store, { slowRecoverEntry: () => appending() }),
        })
        .recover(code)
        .catch((error: unknown) => error);
      await started;
      // Operator 2's home lists the key meanwhile: it may show it, not write the entry.
      expect(await current.rekey({ store: other }).rescuedKeys()).toHaveLength(1);
      expect(isRekeyError(await recovering, "CONFIG_INVALID")).toBe(true);
      expect((await current.store.readAudit()).filter((e) => e.action === "recover")).toHaveLength(
        1,
      );
      expect((await other.readAudit()).filter((e) => e.action === "recover")).toEqual([]);
    } finally {
      await other.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it("is written once when a listing runs while the recovery appends it (the recovery holds the file's lock)", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const current = fixture;
    await current.rekey().register({});
    const other = await current.client.register({ name: "someone else" });
    for (const noRescueLock of [false, true]) {
      let appending: () => void = () => {};
      const started = new Promise<void>((resolve) => {
        appending = resolve;
      });
      const recovering = current
        .rekey({
          store: withRecoveryFaults(current.store, {
            slowRecoverEntry: () => appending(),
            noRescueLock,
          }),
        })
        .recover(other.recoveryCode)
        .catch((error: unknown) => error);
      await started;
      // `rekey status` in another process, while the recovery's entry is being appended.
      await current.rekey().rescuedKeys();
      expect(isRekeyError(await recovering, "CONFIG_INVALID")).toBe(true);
      // Without the lock the file owes nothing: a listing cannot race the recovery's append.
      const entries = await recoveries(current);
      expect(entries, `noRescueLock: ${noRescueLock}`).toHaveLength(noRescueLock ? 2 : 1);
      expect(new Set(entries.map((entry) => entry.requestId)).size).toBe(entries.length);
    }
  });
});

describe("recover, durability before verification", () => {
  it("stores the recovered key before whoami answers (the faucet killed the old one already)", async () => {
    // The recovery's whoami (the sandbox's first) is held back a minute: the key must be in
    // the store long before, since the faucet already killed the old one.
    fixture = await startEngineFixture({
      sandbox: { faults: [{ action: "whoami", nth: 1, kind: "delay", delayMs: 60_000 }] },
    });
    let recoveryCode = "";
    const rekey = fixture.rekey();
    await rekey.register({
      onRecoveryCode: async (code) => {
        recoveryCode = code;
      },
    });
    const store = fixture.store;
    const before = (await storedKey(store, "operator"))?.fingerprint;
    const recovering = rekey.recover(recoveryCode).then(
      () => "settled",
      () => "settled",
    );
    await vi.waitFor(
      async () => {
        const now = await storedKey(store, "operator");
        expect(now?.fingerprint).not.toBe(before);
        expect(now?.fingerprint).toBeDefined();
      },
      { timeout: 10_000, interval: 20 },
    );
    // Stored while whoami is still unanswered: the recovery has not finished.
    expect(await Promise.race([recovering, Promise.resolve("pending")])).toBe("pending");
    const stored = await storedKey(store, "operator");
    await fixture.sandbox.close();
    await recovering;
    expect(stored?.key === undefined ? undefined : openKey(stored.key)).toMatch(/^lf_/);
  });
});

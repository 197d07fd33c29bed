import { appendFile, mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError, RekeyError } from "../errors.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import { AUDIT_FILE } from "../store/file-store.js";
import { changeCredentialsWhenLogGrows } from "../store/file-store-faults.test-helper.js";
import type { AuditEventInput, CredentialStore, StoreData, WriteOptions } from "../store/types.js";
import {
  Crash,
  crashingAt,
  type EngineFixture,
  intentsIn,
  settle,
  startEngineFixture,
  storedKey,
} from "./engine.test-helper.js";

/**
 * Issue 11, one test per defect: each failed on the engine before the fix. The stores here are
 * the real file store, wrapped only to fail an append or a write on cue (a fault the real
 * store cannot produce at a chosen instant).
 */

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/**
 * The real store; appending an entry `refuse` names fails (a blocked or full log), whether
 * alone or with a write (`WriteOptions.audit`, which then writes nothing either).
 */
function withFailingAudit(
  store: CredentialStore,
  refuse: (event: AuditEventInput) => boolean,
): CredentialStore {
  const gone = () => Promise.reject(new RekeyError("STORE_UNAVAILABLE", "the audit log is gone"));
  return Object.assign(Object.create(store) as CredentialStore, {
    appendAudit: (event: AuditEventInput) => (refuse(event) ? gone() : store.appendAudit(event)),
    compareAndSet: (version: number, data: StoreData, options?: WriteOptions) =>
      options?.audit?.some(refuse) === true ? gone() : store.compareAndSet(version, data, options),
    prepareAudit: store.prepareAudit?.bind(store),
    close: async () => {},
  });
}

describe("1. a lost key is recorded durably, with the dead key's removal", () => {
  it("a process that dies before the key_lost audit entry leaves a KEY_LOST record that status shows", async () => {
    fixture = await startEngineFixture({
      store: "file",
      sandbox: {
        requestIdSupport: false,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      },
    });
    await fixture.rekey().register({});
    // The key_lost append never completes: the process dies there.
    const dying = fixture.rekey({
      store: withFailingAudit(fixture.store, (event) => event.outcome === "key_lost"),
    });
    expect(isRekeyError(await settle(dying.rotateKey()))).toBe(true);

    const status = await fixture.rekey().status();
    expect(status.hasKey).toBe(false);
    expect(status.keyLost).toMatchObject({ recovery: expect.stringMatching(/rekey recover/) });
    // The next run writes the owed key_lost entry.
    const history = await fixture.rekey().history();
    expect(history.filter((entry) => entry.outcome === "key_lost")).toHaveLength(1);
    // Using the key says KEY_LOST, not "no key".
    const error = await settle(fixture.rekey().whoami());
    expect(isRekeyError(error, "KEY_LOST")).toBe(true);
  });

  it("the record stays until acknowledged, and acknowledging it is audited", async () => {
    fixture = await startEngineFixture({
      sandbox: {
        requestIdSupport: false,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      },
    });
    await fixture.rekey().register({});
    expect(isRekeyError(await settle(fixture.rekey().rotateKey()), "KEY_LOST")).toBe(true);
    expect((await fixture.rekey().status()).keyLost).toBeDefined();
    await fixture.rekey().acknowledgeKeyLost();
    expect((await fixture.rekey().status()).keyLost).toBeUndefined();
    expect((await fixture.rekey().history()).at(-1)).toMatchObject({ action: "acknowledge" });
  });
});

describe("2. every rotation the faucet committed is audited", () => {
  it("an audit append that fails after the key is stored is written by the next run, once", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const rotating = fixture.rekey({
      store: withFailingAudit(fixture.store, (event) => event.action === "rotate"),
    });
    const result = await rotating.rotateKey();
    expect(result.auditPending).toBe(true);
    const next = fixture.rekey();
    await next.resolvePending();
    await next.resolvePending();
    const entries = (await next.history()).filter(
      (entry) => entry.newFingerprint === result.newFingerprint,
    );
    expect(entries).toHaveLength(1);
    expect((await next.status()).pendingRotation).toBeUndefined();
  });
});

describe("2b. an entry appended with the clearing write whose rename is then called off", () => {
  it("is owed by the rotation and resolved by the next run with no second entry", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const rekey = fixture.rekey();
    await rekey.register({});
    // The clearing write's entry is appended, then its rename is called off.
    const change = changeCredentialsWhenLogGrows(fixture.dir);
    const rotated = await rekey.rotateKey({ force: true });
    change.stop();
    expect(change.changed()).toBe(1);
    const store = fixture.store;
    const ofRotation = async () =>
      (await store.readAudit()).filter((entry) => entry.requestId === rotated.requestId);
    expect(rotated.auditPending).toBe(true);
    expect(await intentsIn(store)).toEqual([
      expect.objectContaining({ requestId: rotated.requestId, phase: "stored" }),
    ]);
    expect(await ofRotation()).toHaveLength(1);

    expect((await fixture.rekey().status()).pendingRotation).toBeUndefined();
    expect(await intentsIn(store)).toEqual([]);
    expect(await ofRotation()).toHaveLength(1);
    expect(verifyAuditChain(await store.readAudit()).ok).toBe(true);
    expect(fixture.sandbox.stats().rotations).toBe(1);
  });
});

describe("3. audit failures are never swallowed", () => {
  it("a torn last line is moved aside intact, the repair audited, and the rotation audited after it", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const auditPath = join(fixture.dir, AUDIT_FILE);
    await appendFile(auditPath, '{"torn');
    const result = await fixture.rekey().rotateKey();
    const history = await fixture.rekey().history();
    expect(verifyAuditChain(history).ok).toBe(true);
    expect(history.map((entry) => entry.action)).toEqual(["register", "repair", "rotate"]);
    expect(history.at(-1)?.newFingerprint).toBe(result.newFingerprint);
    const aside = (await readdir(fixture.dir)).filter((name) => name.includes(".torn-"));
    expect(aside).toHaveLength(1);
    expect(await readFile(join(fixture.dir, aside[0] ?? ""), "utf8")).toBe('{"torn');
  });

  it("doctor --repair (resolvePending) repairs a torn tail without a rotation", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    await appendFile(join(fixture.dir, AUDIT_FILE), '{"seq":2,"to');
    await fixture.rekey().resolvePending();
    expect((await fixture.rekey().history()).at(-1)).toMatchObject({ action: "repair" });
  });

  it("a rotation does not start when the audit log cannot be appended: nothing upstream", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const auditPath = join(fixture.dir, AUDIT_FILE);
    await rm(auditPath);
    await mkdir(auditPath, { mode: 0o700 });
    const error = await settle(fixture.rekey().rotateKey());
    expect(isRekeyError(error, "STORE_UNAVAILABLE", "STORE_CORRUPT")).toBe(true);
    expect(fixture.sandbox.stats().calls.regenerate_operator_key ?? 0).toBe(0);
  });
});

describe("4. a key the faucet issued is never thrown away", () => {
  it("the journal write is at least as large as the document that stores the key", async () => {
    fixture = await startEngineFixture({ store: "file" });
    await fixture.rekey().register({});
    const sizes: number[] = [];
    const measuring = Object.assign(Object.create(fixture.store) as CredentialStore, {
      compareAndSet: (version: number, data: StoreData, options?: WriteOptions) => {
        sizes.push(JSON.stringify(data).length);
        return fixture?.store.compareAndSet(version, data, options);
      },
      prepareAudit: fixture.store.prepareAudit?.bind(fixture.store),
      close: async () => {},
    });
    await fixture.rekey({ store: measuring }).rotateKey();
    const [journal, stored] = sizes;
    expect(journal).toBeGreaterThanOrEqual(stored ?? Number.POSITIVE_INFINITY);
  });
});

describe("5. register never loses the recovery code or the key", () => {
  it("a store that fails after the faucet created the account: the code is handed over, the key rescued", async () => {
    fixture = await startEngineFixture({ store: "file" });
    let failing = false;
    const base = fixture.store;
    const flaky = Object.assign(Object.create(base) as CredentialStore, {
      compareAndSet: (version: number, data: StoreData, options?: WriteOptions) =>
        failing
          ? Promise.reject(new RekeyError("STORE_UNAVAILABLE", "EROFS: read-only file system"))
          : base.compareAndSet(version, data, options),
      prepareAudit: base.prepareAudit?.bind(base),
      close: async () => {},
    });
    let code: string | undefined;
    const error = (await settle(
      fixture.rekey({ store: flaky }).register({
        onRecoveryCode: async (recoveryCode) => {
          code = recoveryCode;
          failing = true;
        },
      }),
    )) as RekeyError;
    expect(isRekeyError(error, "STORE_UNAVAILABLE")).toBe(true);
    expect(code).toMatch(/^lfr_/);
    const rescueFile = String(error.details.rescueFile);
    expect((await stat(rescueFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(rescueFile, "utf8")).toContain(code ?? "missing");

    const imported = await fixture.rekey().importRescue(rescueFile);
    expect((await storedKey(fixture.store, "operator"))?.fingerprint).toBe(imported.fingerprint);
    await expect(fixture.rekey().whoami()).resolves.toMatchObject({ type: "operator" });
    await expect(stat(rescueFile)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("6. an Idempotency-Key survives a crash", () => {
  it.each([true, false])(
    "a retry after a crash after the key was stored gets that rotation (request_id: %s)",
    async (requestIdSupport) => {
      fixture = await startEngineFixture({ store: "file", sandbox: { requestIdSupport } });
      await fixture.rekey().register({});
      const crashing = fixture.rekey({ hooks: crashingAt("key-stored") });
      const rotate =
        (rekey: ReturnType<EngineFixture["rekey"]>) => (attempt: { requestId: string }) =>
          rekey.rotateKey({ requestId: attempt.requestId }).then((result) => result.newFingerprint);
      expect(
        await settle(crashing.withIdempotency("deploy-1", "{}", rotate(crashing))),
      ).toBeInstanceOf(Crash);
      const next = fixture.rekey();
      const retried = await next.withIdempotency("deploy-1", "{}", rotate(next));
      expect(retried.replayed).toBe(false);
      expect(retried.result).toBe((await storedKey(fixture.store, "operator"))?.fingerprint);
      expect(fixture.sandbox.stats().rotations).toBe(1);
      // And now it is a plain replay.
      expect(await next.withIdempotency("deploy-1", "{}", rotate(next))).toMatchObject({
        replayed: true,
        result: retried.result,
      });
    },
  );
});

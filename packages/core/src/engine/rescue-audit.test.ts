import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError, RekeyError } from "../errors.js";
import { createFileStore } from "../store/file-store.js";
import type { AuditEventInput, CredentialStore } from "../store/types.js";
import { type EngineFixture, startEngineFixture } from "./engine.test-helper.js";

// The audit entry a rescue file owes (another account's recovery, rescue-audit.ts): made from
// the file's own fields, written once, and owed only while the recovery holds the file's lock.

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** `store` with its audit log slow (or refusing) for recover entries, and the rescue lock gone. */
function faultyStore(
  base: CredentialStore,
  faults: { refuseRecoverEntry?: boolean; slowRecoverEntry?: () => void; noRescueLock?: boolean },
): CredentialStore {
  return Object.assign(Object.create(base) as CredentialStore, {
    lock: (name: string, options: Parameters<CredentialStore["lock"]>[1]) =>
      faults.noRescueLock === true && name.startsWith("rescue.")
        ? Promise.reject(new RekeyError("STORE_BUSY", "no connection left for the lock"))
        : base.lock(name, options),
    appendAudit: async (event: AuditEventInput) => {
      if (event.action === "recover" && faults.refuseRecoverEntry === true) {
        throw new RekeyError("STORE_UNAVAILABLE", "the audit log is gone");
      }
      if (event.action === "recover" && faults.slowRecoverEntry !== undefined) {
        faults.slowRecoverEntry();
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      return base.appendAudit(event);
    },
    prepareAudit: base.prepareAudit?.bind(base),
    close: async () => {},
  });
}

/** Operator 1's profile recovers with operator 2's code; returns the rescue file and its body. */
async function recoverOtherAccount(
  store: (base: CredentialStore) => CredentialStore,
  expectedCode: "CONFIG_INVALID" | "STORE_UNAVAILABLE",
) {
  fixture = await startEngineFixture({ store: "file" });
  const current = fixture;
  await current.rekey().register({});
  const other = await current.client.register({ name: "someone else" });
  const refused = await current
    .rekey({ store: store(current.store) })
    .recover(other.recoveryCode)
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  expect(isRekeyError(refused, expectedCode), String(refused)).toBe(true);
  const [name] = await readdir(current.rescueDir);
  const file = join(current.rescueDir, name ?? "");
  return { current, file, body: JSON.parse(await readFile(file, "utf8")) };
}

const recoverEntries = async (current: EngineFixture) =>
  (await current.rekey().history()).filter((entry) => entry.action === "recover");

describe("the entry a rescue file owes", () => {
  it("is made from the file's own principal, request id and key", async () => {
    // The recovery's own append fails: the file keeps owing the entry.
    const { current, body } = await recoverOtherAccount(
      (base) => faultyStore(base, { refuseRecoverEntry: true }),
      "STORE_UNAVAILABLE",
    );
    expect(body.pendingAudit).toEqual({ profile: "default", surface: "library" });
    await current.rekey().rescuedKeys();
    expect(await recoverEntries(current)).toEqual([
      expect.objectContaining({
        principal: body.principal,
        requestId: body.requestId,
        newFingerprint: body.fingerprint,
        outcome: "failure",
        errorCode: "CONFIG_INVALID",
      }),
    ]);
  });

  it("cannot be made to say anything else: a pendingAudit with fields of its own, or in a version 1 file, is not a rescue file", async () => {
    const { current, file, body } = await recoverOtherAccount(
      (base) => faultyStore(base, { refuseRecoverEntry: true }),
      "STORE_UNAVAILABLE",
    );
    for (const crafted of [
      {
        ...body,
        pendingAudit: { ...body.pendingAudit, principal: "operator:1", errorCode: "ANYTHING" },
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
    expect(await recoverEntries(current)).toEqual([]);
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
        .rekey({ store: faultyStore(current.store, { slowRecoverEntry: () => appending() }) })
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
          store: faultyStore(current.store, { slowRecoverEntry: () => appending(), noRescueLock }),
        })
        .recover(other.recoveryCode)
        .catch((error: unknown) => error);
      await started;
      // `rekey status` in another process, while the recovery's entry is being appended.
      await current.rekey().rescuedKeys();
      expect(isRekeyError(await recovering, "CONFIG_INVALID")).toBe(true);
      // Without the lock the file owes nothing: a listing cannot race the recovery's append.
      const entries = await recoverEntries(current);
      expect(entries, `noRescueLock: ${noRescueLock}`).toHaveLength(noRescueLock ? 2 : 1);
      expect(new Set(entries.map((entry) => entry.requestId)).size).toBe(entries.length);
    }
  });
});

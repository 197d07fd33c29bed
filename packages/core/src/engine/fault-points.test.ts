import { readdir } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import { storeUnavailable } from "../store/file-io.js";
import type { AuditEventInput, CredentialStore, StoreData, WriteOptions } from "../store/types.js";
import type { RotationStep } from "./context.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";

/**
 * Fault points: the store starts failing with a real errno (as the file store reports it) at
 * each step of a rotation, and stays broken until it is "repaired". The real file store can be
 * made read-only or full only as a whole and not at a chosen instant (and not at all as root),
 * so it is wrapped: the real interface, failing on cue. Whatever the step and the errno, the
 * key the faucet issued is never lost silently and every committed rotation is audited once
 * the store works again.
 */

const ERRNOS = ["EROFS", "ENOSPC", "EFBIG", "EACCES", "EDQUOT"] as const;
/** Where the store breaks: before the journal write (preflight), or after a rotation step. */
const BREAK_AT = [
  "preflight",
  "intent-written",
  "upstream-replied",
  "key-stored",
  "verified",
] as const;

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

function faultyStore(store: CredentialStore) {
  let errno: string | undefined;
  const fail = () =>
    Promise.reject(
      storeUnavailable("write", store.location, Object.assign(new Error(errno), { code: errno })),
    );
  const faulty: CredentialStore = Object.assign(Object.create(store) as CredentialStore, {
    compareAndSet: (version: number, data: StoreData, options?: WriteOptions) =>
      errno === undefined ? store.compareAndSet(version, data, options) : fail(),
    appendAudit: (event: AuditEventInput) =>
      errno === undefined ? store.appendAudit(event) : fail(),
    checkWritable: () => (errno === undefined ? store.checkWritable() : fail()),
    prepareAudit: () =>
      errno === undefined ? (store.prepareAudit?.() ?? Promise.resolve({})) : fail(),
    close: async () => {},
  });
  return {
    store: faulty,
    breakWith(code: string) {
      errno = code;
    },
    repair() {
      errno = undefined;
    },
  };
}

describe.each(ERRNOS)("the store fails with %s", (errno) => {
  it.each(BREAK_AT)("from %s on: no silent loss, every committed rotation audited", async (at) => {
    fixture = await startEngineFixture({ store: "file", sandbox: { requestIdSupport: false } });
    await fixture.rekey().register({});
    const faulty = faultyStore(fixture.store);
    if (at === "preflight") faulty.breakWith(errno);
    const rotating = fixture.rekey({
      store: faulty.store,
      storeRetryMs: 200,
      hooks: {
        afterStep(step: RotationStep) {
          if (step === at) faulty.breakWith(errno);
        },
      },
    });
    const outcome = await rotating.rotateKey().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    const committed = fixture.sandbox.stats().rotations;
    if ("error" in outcome) {
      // A store error, named as such, with the errno; never INTERNAL.
      expect(isRekeyError(outcome.error, "STORE_UNAVAILABLE"), String(outcome.error)).toBe(true);
    }
    if (at === "preflight") expect(committed).toBe(0);

    // The store works again; the next run finishes whatever was left.
    faulty.repair();
    const next = fixture.rekey();
    await next.resolvePending();
    const status = await next.status();
    if (committed > 0) {
      // The issued key is stored (from the store, the journal or a rescue file): never lost.
      expect(status.keyLost, `${errno} at ${at}`).toBeUndefined();
      expect(status.fingerprint).toBe((await storedKey(fixture.store, "operator"))?.fingerprint);
      await expect(next.whoami()).resolves.toMatchObject({ type: "operator" });
    }
    const history = await next.history();
    expect(verifyAuditChain(history).ok).toBe(true);
    const audited = history.filter(
      (entry) =>
        (entry.action === "rotate" || entry.action === "resolve") &&
        (entry.outcome === "success" || entry.outcome === "recovered"),
    );
    expect(audited.length, `${errno} at ${at}: audited rotations`).toBe(committed);
    expect(status.pendingRotation).toBeUndefined();
    // A rescue file, if one was written, was taken back and removed.
    expect(await readdir(fixture.rescueDir).catch(() => [])).toEqual([]);
  });
});

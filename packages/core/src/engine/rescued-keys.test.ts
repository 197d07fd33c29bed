import { cp, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { createFileStore } from "../store/file-store.js";
import type { CredentialStore } from "../store/types.js";
import {
  type EngineFixture,
  refusingWrites,
  startEngineFixture,
  storedKey,
} from "./engine.test-helper.js";
import { writeRescueFile } from "./rescue.js";
import { importAdvice } from "./rescued-keys.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("rescued keys", () => {
  it("a rescue file left behind after its key was stored, then rotated past, is neither shown nor imported over the live key", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const rekey = fixture.rekey();
    await rekey.register({ onRecoveryCode: async () => {} });
    // What a kill between the store taking a rotation's key and the rescue file's removal
    // leaves: a rescue file holding the key the store holds.
    const { data } = await fixture.store.read();
    const record = Object.values(data.principals).find((r) => r.principal.startsWith("operator"));
    const held = await storedKey(fixture.store, "operator");
    if (record === undefined || held?.key === undefined) throw new Error("no operator stored");
    const left = await writeRescueFile(fixture.rescueDir, fixture.store, {
      faucet: record.faucet,
      principal: record.principal,
      key: openKey(held.key),
      source: "rotate",
      savedAt: record.savedAt ?? new Date(fixture.clock.now()).toISOString(),
      requestId: "left-behind",
    });
    expect(await rekey.rescuedKeys()).toEqual([]);

    // The operator rotates again: the file's key is dead now.
    fixture.clock.advance(1_000);
    await rekey.rotateKey();
    const live = await storedKey(fixture.store, "operator");
    expect(live?.fingerprint).not.toBe(held.fingerprint);

    // Status and doctor must not send anyone to import it...
    expect(await rekey.rescuedKeys()).toEqual([]);
    // ...and an import by hand refuses to put the dead key over the live one.
    const refused = await rekey.importRescue(left).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isRekeyError(refused, "INVALID_INPUT")).toBe(true);
    expect((await storedKey(fixture.store, "operator"))?.fingerprint).toBe(live?.fingerprint);
    await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator" });
    expect(await readdir(fixture.rescueDir)).toEqual([left.split("/").pop()]);
  });
});

/** Registers through `rekey` on a store that starts refusing writes once the faucet answered. */
async function registerIntoRescue(
  current: EngineFixture,
  store: CredentialStore,
  profile?: string,
): Promise<{ file: string; fingerprint: string; hint: string }> {
  let failing = false;
  const refusing = refusingWrites(store, () => failing);
  const error = await current
    .rekey({ store: refusing, storeRetryMs: 200, ...(profile === undefined ? {} : { profile }) })
    .register({
      onRecoveryCode: async () => {
        failing = true;
      },
    })
    .then(
      () => undefined,
      (caught: unknown) => caught,
    );
  if (!isRekeyError(error, "STORE_UNAVAILABLE")) throw new Error(`register: ${String(error)}`);
  const file = String(error.details.rescueFile);
  const { fingerprint } = JSON.parse(await readFile(file, "utf8")) as { fingerprint: string };
  return { file, fingerprint, hint: error.hint ?? "" };
}

describe("a registration's rescue file", () => {
  it("names its profile, and the import command it advises takes the key into that profile", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const rescued = await registerIntoRescue(fixture, fixture.store, "second");
    const advice = `rekey --profile second rescue import ${rescued.file}`;
    expect(rescued.hint).toContain(advice);
    const second = fixture.rekey({ profile: "second" });
    const [listed] = await second.rescuedKeys();
    expect(listed === undefined ? undefined : importAdvice(listed)).toBe(advice);
    // As advised: the profile that registered points at the account again.
    await second.importRescue(rescued.file);
    await expect(second.whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
    // The default profile's advice stays the plain command.
    const plain = await registerIntoRescue(fixture, fixture.store);
    expect(plain.hint).toContain(`\`rekey rescue import ${plain.file}\``);
  });
});

describe("rescue files of two stores in one rescue directory", () => {
  let other: CredentialStore | undefined;
  let otherDir: string | undefined;
  afterEach(async () => {
    await other?.close();
    if (otherDir !== undefined) await rm(otherDir, { recursive: true, force: true });
    other = undefined;
    otherDir = undefined;
  });

  /** A second file store (another REKEY_HOME) whose engines share the fixture's rescue dir. */
  async function secondStore(current: EngineFixture) {
    otherDir = await mkdtemp(join(tmpdir(), "rekey-second-home-"));
    other = createFileStore({ dir: otherDir, env: {} });
    return { store: other, rekey: current.rekey({ store: other }) };
  }

  it("a store lists and imports only its own: the other home's rescued key is not shown, and its import is refused", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const second = await secondStore(fixture);
    const rescued = await registerIntoRescue(fixture, fixture.store);
    const written = JSON.parse(await readFile(rescued.file, "utf8")) as Record<string, unknown>;
    expect(written.store).toEqual({ kind: "file", location: fixture.store.location });
    expect((await stat(rescued.file)).mode & 0o777).toBe(0o600);

    // The second home sees nothing: not in its list, not as the hint of its empty status.
    expect(await second.rekey.rescuedKeys()).toEqual([]);
    const missing = await second.rekey.status().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isRekeyError(missing, "NOT_FOUND")).toBe(true);
    expect((missing as { hint?: string }).hint).not.toContain(rescued.fingerprint);
    expect((missing as { hint?: string }).hint).toContain("rekey register");
    // ...and cannot take it: the key is the first home's account.
    const refused = await second.rekey.importRescue(rescued.file).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isRekeyError(refused, "CONFIG_INVALID")).toBe(true);
    expect(String((refused as Error).message)).toContain(fixture.store.location);
    // Its hint is a command that works as written: the home the file names.
    expect((refused as { hint?: string }).hint).toContain(
      `REKEY_STORE=${dirname(fixture.store.location)} rekey rescue import ${rescued.file}`,
    );
    expect(String((refused as Error).message)).not.toContain(openKeyOf(written));
    expect((await second.store.read()).data.principals).toEqual({});
    expect(await readdir(fixture.rescueDir)).toEqual([rescued.file.split("/").pop()]);

    // The store it came from lists it and imports it.
    const own = fixture.rekey();
    expect(await own.rescuedKeys()).toEqual([
      expect.objectContaining({ fingerprint: rescued.fingerprint, source: "register" }),
    ]);
    await own.importRescue(rescued.file);
    await expect(own.whoami()).resolves.toMatchObject({ type: "operator" });
    expect(await readdir(fixture.rescueDir)).toEqual([]);
  });

  it("a rescue file written by the previous version (no store named) is still listed and imported", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const second = await secondStore(fixture);
    const rescued = await registerIntoRescue(fixture, fixture.store);
    // The same file as rekey before this change wrote it: version 1, no `store`.
    const { store: _store, ...previous } = JSON.parse(await readFile(rescued.file, "utf8")) as {
      store?: unknown;
    };
    await rm(rescued.file);
    const legacy = join(fixture.rescueDir, "operator-1-register-0a1b2c.json");
    await writeFile(legacy, `${JSON.stringify({ ...previous, rescueVersion: 1 }, null, 2)}\n`, {
      mode: 0o600,
    });
    // Any store of its faucet lists it, as before: nothing says whose it was.
    expect(await second.rekey.rescuedKeys()).toEqual([
      expect.objectContaining({ path: legacy, fingerprint: rescued.fingerprint }),
    ]);
    const own = fixture.rekey();
    expect(await own.rescuedKeys()).toEqual([
      expect.objectContaining({ path: legacy, fingerprint: rescued.fingerprint }),
    ]);
    await expect(own.importRescue(legacy)).resolves.toMatchObject({
      fingerprint: rescued.fingerprint,
    });
    await expect(own.whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
    expect(await readdir(fixture.rescueDir)).toEqual([]);
  });

  /** A rotation whose store took the journal, then refused the key: it is in a rescue file. */
  async function rotateIntoRescue(current: EngineFixture): Promise<string> {
    let writes = 0;
    const afterJournal = refusingWrites(current.store, () => {
      writes += 1;
      return writes > 1;
    });
    const rotating = await current
      .rekey({ store: afterJournal, storeRetryMs: 200 })
      .rotateKey()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    if (!isRekeyError(rotating, "STORE_UNAVAILABLE")) throw new Error(`rotate: ${rotating}`);
    return String(rotating.details.rescueFile);
  }

  it("a rotation's journal takes its rescue file whatever store place the file names (moved, or reached by another path)", async () => {
    // No replay by request_id: the rescue file is the only way back to the rotated key.
    fixture = await startEngineFixture({ store: "file", sandbox: { requestIdSupport: false } });
    await fixture.rekey().register({});
    const file = await rotateIntoRescue(fixture);
    // The file names a place this store is not at (as after a move): the request id still
    // ties it to the journal, and resolving must take the key, not call it lost.
    const written = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    await writeFile(
      file,
      `${JSON.stringify({ ...written, store: { kind: "file", location: "/elsewhere/credentials.json" } })}\n`,
      { mode: 0o600 },
    );
    const rekey = fixture.rekey();
    await expect(rekey.resolvePending()).resolves.toBeDefined();
    await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator" });
    expect((await storedKey(fixture.store, "operator"))?.fingerprint).toBe(written.fingerprint);
    expect(await readdir(fixture.rescueDir)).toEqual([]);
  });

  it("a store holding the file's principal lists and imports it, whichever store the file names", async () => {
    fixture = await startEngineFixture({ store: "file", sandbox: { requestIdSupport: false } });
    await fixture.rekey().register({});
    const file = await rotateIntoRescue(fixture);
    // The whole home moved: the copy holds the principal (and the journal), the file names the
    // old place.
    otherDir = await mkdtemp(join(tmpdir(), "rekey-moved-home-"));
    await cp(dirname(fixture.store.location), otherDir, { recursive: true });
    other = createFileStore({ dir: otherDir, env: {} });
    const moved = fixture.rekey({ store: other });
    const { fingerprint } = JSON.parse(await readFile(file, "utf8")) as { fingerprint: string };
    expect(await moved.rescuedKeys()).toEqual([
      expect.objectContaining({ path: file, fingerprint, source: "rotate" }),
    ]);
    await expect(moved.importRescue(file)).resolves.toMatchObject({ fingerprint });
    await expect(moved.whoami()).resolves.toMatchObject({ type: "operator" });
  });

  it("another store holding the principal takes the key but leaves the file to the store whose journal needs it", async () => {
    fixture = await startEngineFixture({ store: "file", sandbox: { requestIdSupport: false } });
    await fixture.rekey().register({});
    // A copy of the home taken before the rotation: it holds operator 1, and no journal.
    otherDir = await mkdtemp(join(tmpdir(), "rekey-copied-home-"));
    await cp(dirname(fixture.store.location), otherDir, { recursive: true });
    other = createFileStore({ dir: otherDir, env: {} });
    const file = await rotateIntoRescue(fixture);
    const copy = fixture.rekey({ store: other });
    expect(await copy.rescuedKeys()).toEqual([expect.objectContaining({ path: file })]);
    const { fingerprint } = JSON.parse(await readFile(file, "utf8")) as { fingerprint: string };
    await expect(copy.importRescue(file)).resolves.toMatchObject({ fingerprint });
    await expect(copy.whoami()).resolves.toMatchObject({ type: "operator" });
    // The file is still there for the store it names: its journal takes the key, not a loss.
    expect(await copy.rescuedKeys()).toEqual([]);
    const rekey = fixture.rekey();
    await expect(rekey.resolvePending()).resolves.toBeDefined();
    await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator" });
    expect(await readdir(fixture.rescueDir)).toEqual([]);
  });

  it("a store opened through a symbolic link lists and imports the file its real path wrote", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const rescued = await registerIntoRescue(fixture, fixture.store);
    // The same home through a link: the store holds nothing (the registration was refused),
    // so only the place can tell the file is its own.
    otherDir = await mkdtemp(join(tmpdir(), "rekey-linked-home-"));
    // (A link above the store directory: rekey refuses one as the directory itself.)
    const storeDir = dirname(fixture.store.location);
    const link = join(otherDir, "via-link");
    await symlink(dirname(storeDir), link);
    other = createFileStore({ dir: join(link, basename(storeDir)), env: {} });
    expect(other.location).not.toBe(fixture.store.location);
    const linked = fixture.rekey({ store: other });
    expect(await linked.rescuedKeys()).toEqual([
      expect.objectContaining({ path: rescued.file, fingerprint: rescued.fingerprint }),
    ]);
    await expect(linked.importRescue(rescued.file)).resolves.toMatchObject({
      fingerprint: rescued.fingerprint,
    });
  });
});

/** The raw key of a parsed rescue file, for "not in the message" checks. */
function openKeyOf(file: Record<string, unknown>): string {
  return String(file.key);
}

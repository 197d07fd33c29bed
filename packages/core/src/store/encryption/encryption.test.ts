import { randomBytes } from "node:crypto";
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../../errors.js";
import { sampleStoreData } from "../contract-suite.js";
import { createFileStore, type FileStore } from "../file-store.js";
import { thawedCopy } from "../freeze.js";
import type { PrincipalRecord, StoreData } from "../types.js";
import { keyIdOf, parseMasterKey } from "./master-key.js";
import { rekeyMaster } from "./rekey-master.js";
import { openKey, type RecordKey, SealedKey } from "./sealed-key.js";
import { openSecret, sealSecret } from "./sealed-secret.js";

let root: string;
let dir: string;
const stores: FileStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "rekey-encryption-"));
  dir = join(root, "store");
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(root, { recursive: true, force: true });
});

function open(env: Record<string, string> = {}, at = dir): FileStore {
  const store = createFileStore({ dir: at, env });
  stores.push(store);
  return store;
}

/** Two principals (an operator and its agent), each with its own key. */
function twoPrincipals(): StoreData {
  const data = structuredClone(sampleStoreData("one")) as StoreData;
  const [operatorId] = Object.keys(data.principals);
  const operator = data.principals[operatorId as string];
  const agentId = `${operator?.faucet}#agent:7`;
  data.principals[agentId] = {
    faucet: operator?.faucet as string,
    principal: "agent:7",
    operatorId: 1,
    key: "lf_agent_seven_key_0123456789",
    fingerprint: "fp:777777777777",
    savedAt: "2025-01-01T00:00:00.000Z",
    source: "create",
  };
  return data;
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isRekeyError(error) && error.code, String(error)).toBe(code);
  return error as Error & { hint?: string };
}

const credentials = () => join(dir, "credentials.json");

describe("sealed secrets", () => {
  const key = parseMasterKey(randomBytes(32).toString("base64"), "test");

  it("round-trips, and never seals the same key to the same bytes twice", () => {
    const one = sealSecret("lf_secret", key, "store-a", "record#key");
    const two = sealSecret("lf_secret", key, "store-a", "record#key");
    expect(one).not.toBe(two);
    expect(one).not.toContain("lf_secret");
    expect(one.startsWith(`rk1:${key.id}:`)).toBe(true);
    expect(openSecret(one, [key], "store-a", "record#key")).toEqual({
      ok: true,
      secret: "lf_secret",
    });
  });

  it("does not open in another place, another store, or under another key", () => {
    const sealed = sealSecret("lf_secret", key, "store-a", "record#key");
    expect(openSecret(sealed, [key], "store-a", "other#key")).toMatchObject({
      ok: false,
      failure: "not-authentic",
    });
    expect(openSecret(sealed, [key], "store-b", "record#key")).toMatchObject({
      ok: false,
      failure: "not-authentic",
    });
    const other = parseMasterKey(randomBytes(32).toString("base64"), "other");
    expect(openSecret(sealed, [other], "store-a", "record#key")).toEqual({
      ok: false,
      failure: "unknown-key",
      keyId: key.id,
    });
  });

  it("names a key by an id that is not the key", () => {
    expect(key.id).toMatch(/^[0-9a-f]{16}$/);
    expect(key.id).toBe(keyIdOf(key.bytes));
    expect(key.bytes.toString("hex")).not.toContain(key.id);
  });
});

describe("the file store's keys at rest", () => {
  it("writes no key in clear, and reads them back through another handle", async () => {
    const data = twoPrincipals();
    await open().compareAndSet(0, data);
    const text = await readFile(credentials(), "utf8");
    for (const record of Object.values(data.principals)) expect(text).not.toContain(record.key);
    expect((await stat(join(dir, "master.key"))).mode & 0o777).toBe(0o600);
    expect((await open().read()).data).toEqual(data);
  });

  it("a copied credentials.json without its master.key is locked, not empty", async () => {
    await open().compareAndSet(0, twoPrincipals());
    const copy = join(root, "copy");
    await mkdir(copy, { mode: 0o700 });
    await copyFile(credentials(), join(copy, "credentials.json"));
    const stolen = open({}, copy);
    const error = await expectCode(stolen.read(), "STORE_LOCKED");
    expect(error.hint).toContain("master.key");
    // Nothing is written, and no new key is made that would look like the store's.
    await expectCode(stolen.compareAndSet(1, sampleStoreData("two")), "STORE_LOCKED");
    expect(await readdir(copy)).toEqual(["credentials.json"]);
    expect(await readFile(join(copy, "credentials.json"), "utf8")).toBe(
      await readFile(credentials(), "utf8"),
    );
  });

  it("a wrong master key is STORE_LOCKED with a hint; nothing read as empty or overwritten", async () => {
    const right = randomBytes(32).toString("base64");
    await open({ REKEY_MASTER_KEY: right }).compareAndSet(0, twoPrincipals());
    const before = await readFile(credentials(), "utf8");
    const wrong = open({ REKEY_MASTER_KEY: randomBytes(32).toString("base64") });
    const error = await expectCode(wrong.read(), "STORE_LOCKED");
    expect(error.message).toContain(keyIdOf(Buffer.from(right, "base64")));
    expect(error.hint).toContain("REKEY_MASTER_KEY");
    await expectCode(wrong.compareAndSet(1, sampleStoreData("two")), "STORE_LOCKED");
    expect((await wrong.health()).ok).toBe(false);
    expect(await readFile(credentials(), "utf8")).toBe(before);
    expect((await open({ REKEY_MASTER_KEY: right }).read()).data).toEqual(twoPrincipals());
  });

  // A read leaves keys sealed until used (status shows fingerprints, and decrypts nothing):
  // a changed or swapped ciphertext fails where its key is read, and `doctor` (health) opens
  // every key, so it shows there before a rotation needs it.

  /** The error reading `record`'s key throws (undefined when it opens). */
  function keyError(
    record: { key?: RecordKey } | undefined,
  ): (Error & { code?: string }) | undefined {
    try {
      if (record?.key !== undefined) openKey(record.key);
      return undefined;
    } catch (error) {
      return error as Error & { code?: string };
    }
  }

  it("one changed ciphertext byte is STORE_CORRUPT naming the record when its key is read, in doctor, and nothing is lost", async () => {
    const data = twoPrincipals();
    await open().compareAndSet(0, data);
    const text = await readFile(credentials(), "utf8");
    const sealed = /"key":"(rk1:[0-9a-f]{16}:)([A-Za-z0-9_-]+)"/.exec(text);
    const body = sealed?.[2] as string;
    const flipped = `${body.slice(0, 20)}${body[20] === "A" ? "B" : "A"}${body.slice(21)}`;
    const tampered = text.replace(body, flipped);
    await writeFile(credentials(), tampered);
    const store = open();
    const snapshot = await store.read();
    const [tamperedId, intactId] = Object.keys(data.principals) as [string, string];
    const error = keyError(snapshot.data.principals[tamperedId]);
    expect(isRekeyError(error) && error.code).toBe("STORE_CORRUPT");
    expect(error?.message).toContain(`record ${tamperedId} does not decrypt`);
    expect(openKey(snapshot.data.principals[intactId]?.key ?? "")).toBe(
      data.principals[intactId]?.key,
    );
    const health = await store.health();
    expect(health.ok).toBe(false);
    expect(health.problems.join("\n")).toContain(`record ${tamperedId} does not decrypt`);
    // A write that carries the record forward keeps its ciphertext as it was: a restore from a
    // backup, or the faucet's recovery, still finds what there was.
    const draft = structuredClone(
      snapshot.data.principals[intactId],
    ) as StoreData["principals"][string];
    const next = {
      ...snapshot.data,
      principals: { ...snapshot.data.principals, [intactId]: { ...draft, name: "renamed" } },
    } as StoreData;
    expect((await store.compareAndSet(snapshot.version, next)).ok).toBe(true);
    expect(await readFile(credentials(), "utf8")).toContain(flipped);
    expect(keyError((await open().read()).data.principals[tamperedId])?.message).toContain(
      "does not decrypt",
    );
  });

  it("two principals' ciphertexts swapped is STORE_CORRUPT: a key never opens as another's", async () => {
    const data = twoPrincipals();
    await open().compareAndSet(0, data);
    const text = await readFile(credentials(), "utf8");
    const [first, second] = [...text.matchAll(/"key":"(rk1:[^"]+)"/g)].map((m) => m[1] as string);
    const swapped = text
      .replace(first as string, "<FIRST>")
      .replace(second as string, first as string)
      .replace("<FIRST>", second as string);
    await writeFile(credentials(), swapped);
    const store = open();
    const snapshot = await store.read();
    for (const id of Object.keys(data.principals)) {
      const error = keyError(snapshot.data.principals[id]);
      expect(isRekeyError(error) && error.code).toBe("STORE_CORRUPT");
      expect(error?.message).toMatch(/moved from another record or store/);
    }
    const health = await store.health();
    expect(health.problems.filter((problem) => problem.includes("does not decrypt"))).toHaveLength(
      2,
    );
    expect(await readFile(credentials(), "utf8")).toBe(swapped);
  });

  it("a record moved from another store (same master key) does not open there", async () => {
    const key = randomBytes(32).toString("base64");
    const otherDir = join(root, "other");
    await open({ REKEY_MASTER_KEY: key }).compareAndSet(0, twoPrincipals());
    await open({ REKEY_MASTER_KEY: key }, otherDir).compareAndSet(0, twoPrincipals());
    const ours = JSON.parse(await readFile(credentials(), "utf8"));
    const theirs = JSON.parse(await readFile(join(otherDir, "credentials.json"), "utf8"));
    ours.data.principals = theirs.data.principals;
    await writeFile(credentials(), JSON.stringify(ours));
    const store = open({ REKEY_MASTER_KEY: key });
    for (const record of Object.values((await store.read()).data.principals)) {
      expect(keyError(record)?.message).toMatch(/moved from another record or store/);
    }
    expect((await store.health()).ok).toBe(false);
  });

  it("a status read opens no key: each stays sealed, as data, and opens where it is used", async () => {
    const data = twoPrincipals();
    await open().compareAndSet(0, data);
    const text = await readFile(credentials(), "utf8");
    const snapshot = await open().read();
    for (const [id, record] of Object.entries(snapshot.data.principals)) {
      // Data, not an accessor: records keep V8's fast shape, and nothing opens on a walk.
      const descriptor = Object.getOwnPropertyDescriptor(record, "key");
      expect(descriptor?.get, id).toBeUndefined();
      expect(record.key).toBeInstanceOf(SealedKey);
      const sealed = record.key as SealedKey;
      expect(sealed.place).toBe(`${id}#key`);
      expect(text).toContain(sealed.sealed);
      expect(record.fingerprint).toBe(data.principals[id]?.fingerprint);
      expect(openKey(sealed)).toBe(data.principals[id]?.key);
      expect(Object.isFrozen(record) && Object.isFrozen(sealed)).toBe(true);
    }
    // Whatever serialises or copies a snapshot sees the sealed form, never a key.
    const shown = JSON.stringify(snapshot.data);
    const copied = JSON.stringify(structuredClone(snapshot.data));
    for (const record of Object.values(data.principals)) {
      expect(shown).not.toContain(record.key);
      expect(copied).not.toContain(record.key);
    }
  });

  it("a record copied with structuredClone or thawedCopy and written back keeps its ciphertext", async () => {
    const data = twoPrincipals();
    await open().compareAndSet(0, data);
    const store = open();
    const snapshot = await store.read();
    const [cloned, thawed] = Object.keys(data.principals) as [string, string];
    const before = await readFile(credentials(), "utf8");
    const next = structuredClone(snapshot.data) as StoreData;
    next.principals[cloned] = { ...(next.principals[cloned] as PrincipalRecord), name: "a" };
    next.principals[thawed] = {
      ...thawedCopy(snapshot.data.principals[thawed] as PrincipalRecord),
      name: "b",
    };
    expect((await store.compareAndSet(snapshot.version, next)).ok).toBe(true);
    const after = await readFile(credentials(), "utf8");
    for (const [id, record] of Object.entries(snapshot.data.principals)) {
      expect(after, id).toContain((record.key as SealedKey).sealed);
    }
    expect(after).not.toBe(before);
    expect((await open().read()).data.principals).toEqual({
      [cloned]: { ...data.principals[cloned], name: "a" },
      [thawed]: { ...data.principals[thawed], name: "b" },
    });
    // Only a copy made without its opener cannot be opened where it is: it says so.
    const copy = structuredClone(snapshot.data.principals[cloned]?.key) as RecordKey;
    expect(() => openKey(copy)).toThrow(/structuredClone/);
  });

  it("a key in clear written again at its place by the same handle keeps its ciphertext (one seal)", async () => {
    // A rotation's key write, then its journal's clearing, as the engine makes them: the
    // second write holds the new key in clear again, in a copy of the record.
    const store = open();
    const data = twoPrincipals();
    const written = await store.compareAndSet(0, data);
    if (!written.ok) throw new Error("first write refused");
    const sealedOf = async () =>
      Object.values(
        (JSON.parse(await readFile(credentials(), "utf8")) as { data: StoreData }).data.principals,
      ).map((record) => record.key as string);
    const first = await sealedOf();
    const next = structuredClone(data);
    for (const record of Object.values(next.principals)) record.name = "renamed";
    expect((await store.compareAndSet(written.snapshot.version, next)).ok).toBe(true);
    expect(await sealedOf()).toEqual(first);
    // Another key at that place is sealed anew, and opens as itself.
    const [id] = Object.keys(next.principals) as [string];
    const third = structuredClone(next);
    (third.principals[id] as PrincipalRecord).key = "lf_a_new_key_for_the_same_place_000";
    expect((await store.compareAndSet(written.snapshot.version + 1, third)).ok).toBe(true);
    const after = await sealedOf();
    expect(after[0]).not.toBe(first[0]);
    expect(after[1]).toBe(first[1]);
    expect(openKey((await open().read()).data.principals[id]?.key ?? "")).toBe(
      "lf_a_new_key_for_the_same_place_000",
    );
  });

  it("a key moved to another place in a draft is opened and sealed for its new place", async () => {
    const data = twoPrincipals();
    await open().compareAndSet(0, data);
    const store = open();
    const snapshot = await store.read();
    const [first, second] = Object.keys(data.principals) as [string, string];
    const next = structuredClone(snapshot.data) as StoreData;
    // The first record's key, as sealed data, moved to the second record (a swap a draft may
    // make, as settling alternates does): it must not be written with its old place's AAD.
    (next.principals[second] as PrincipalRecord).key = snapshot.data.principals[first]?.key;
    (next.principals[second] as PrincipalRecord).fingerprint =
      snapshot.data.principals[first]?.fingerprint;
    expect((await store.compareAndSet(snapshot.version, next)).ok).toBe(true);
    const reread = (await open().read()).data.principals;
    expect(keyError(reread[second])).toBeUndefined();
    expect(openKey(reread[second]?.key ?? "")).toBe(data.principals[first]?.key);
    expect((await store.health()).ok).toBe(true);
  });

  it("a truncated key file is STORE_LOCKED, and the store is left as it was", async () => {
    await open().compareAndSet(0, twoPrincipals());
    const before = await readFile(credentials(), "utf8");
    const keyFile = join(dir, "master.key");
    await writeFile(keyFile, (await readFile(keyFile, "utf8")).slice(0, 20));
    const store = open();
    const error = await expectCode(store.read(), "STORE_LOCKED");
    expect(error.message).toContain("truncated");
    await expectCode(store.compareAndSet(1, sampleStoreData("two")), "STORE_LOCKED");
    expect(await readFile(credentials(), "utf8")).toBe(before);
  });

  it("takes the key from REKEY_MASTER_KEY_FILE only when it is 0600", async () => {
    const keyFile = join(root, "key");
    await writeFile(keyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    await open({ REKEY_MASTER_KEY_FILE: keyFile }).compareAndSet(0, twoPrincipals());
    expect((await open({ REKEY_MASTER_KEY_FILE: keyFile }).read()).version).toBe(1);
    await chmod(keyFile, 0o644);
    const error = await expectCode(open({ REKEY_MASTER_KEY_FILE: keyFile }).read(), "STORE_LOCKED");
    expect(error.message).toContain("chmod 600");
    await expectCode(open({ REKEY_MASTER_KEY_FILE: join(root, "missing") }).read(), "STORE_LOCKED");
  });

  it("takes the key from REKEY_MASTER_KEY_CMD's stdout; a failing command is STORE_LOCKED", async () => {
    const keyFile = join(root, "key");
    await writeFile(keyFile, randomBytes(32).toString("base64"), { mode: 0o600 });
    const command = `cat '${keyFile}'`;
    await open({ REKEY_MASTER_KEY_CMD: command }).compareAndSet(0, twoPrincipals());
    expect((await open({ REKEY_MASTER_KEY_FILE: keyFile }).read()).data).toEqual(twoPrincipals());
    const error = await expectCode(
      open({ REKEY_MASTER_KEY_CMD: "echo oops >&2; exit 3" }).read(),
      "STORE_LOCKED",
    );
    expect(error.message).toContain("exit 3");
    expect(error.message).not.toContain("oops");
  });

  it("takes REKEY_MASTER_KEY before REKEY_MASTER_KEY_FILE before REKEY_MASTER_KEY_CMD", async () => {
    const key = randomBytes(32).toString("base64");
    await open({
      REKEY_MASTER_KEY: key,
      REKEY_MASTER_KEY_FILE: join(root, "missing"),
      REKEY_MASTER_KEY_CMD: "exit 1",
    }).compareAndSet(0, twoPrincipals());
    expect((await open({ REKEY_MASTER_KEY: key }).read()).version).toBe(1);
  });

  it("moves a store from its own master.key to a configured key on the next write", async () => {
    await open().compareAndSet(0, twoPrincipals());
    const key = randomBytes(32).toString("base64");
    const configured = open({ REKEY_MASTER_KEY: key });
    const { version, data } = await configured.read();
    await configured.compareAndSet(version, data as StoreData);
    await rm(join(dir, "master.key"));
    expect((await open({ REKEY_MASTER_KEY: key }).read()).data).toEqual(twoPrincipals());
  });
});

describe("rekey store rekey-master", () => {
  it("moves a store to a new generated master.key, audited with key ids only", async () => {
    const store = open();
    await store.compareAndSet(0, twoPrincipals());
    const oldKey = await readFile(join(dir, "master.key"), "utf8");
    const result = await rekeyMaster(store, "generate", "cli");
    expect(result.records).toBe(2);
    expect(result.keyId).not.toBe(result.previousKeyId);
    const newKey = await readFile(join(dir, "master.key"), "utf8");
    expect(newKey).not.toBe(oldKey);
    expect((await readdir(dir)).filter((name) => name.startsWith("master.key"))).toEqual([
      "master.key",
    ]);
    const text = await readFile(credentials(), "utf8");
    expect(text).toContain(`rk1:${result.keyId}:`);
    expect(text).not.toContain(`rk1:${result.previousKeyId}:`);
    expect((await open().read()).data).toEqual(twoPrincipals());
    expect(result.audit).toMatchObject({
      action: "rekey_master",
      oldFingerprint: `key:${result.previousKeyId}`,
      newFingerprint: `key:${result.keyId}`,
    });
    expect(JSON.stringify(result.audit)).not.toContain(newKey.trim());
  });

  it("resumes after a crash between sealing and replacing master.key: both keys open it", async () => {
    const store = open();
    await store.compareAndSet(0, twoPrincipals());
    await rekeyMaster(store, "generate", "cli");
    // As if the process died before the rename: the store is sealed under master.key.next.
    await rename(join(dir, "master.key"), join(dir, "master.key.next"));
    await writeFile(join(dir, "master.key"), `${randomBytes(32).toString("base64")}\n`, {
      mode: 0o600,
    });
    expect((await open().read()).data).toEqual(twoPrincipals());
    const resumed = await rekeyMaster(open(), "generate", "cli");
    expect(await readdir(dir)).not.toContain("master.key.next");
    expect(await readFile(credentials(), "utf8")).toContain(`rk1:${resumed.keyId}:`);
    expect((await open().read()).data).toEqual(twoPrincipals());
  });

  it("moves a store under a configured key to a given key; the old one no longer opens it", async () => {
    const oldKey = randomBytes(32).toString("base64");
    const store = open({ REKEY_MASTER_KEY: oldKey });
    await store.compareAndSet(0, twoPrincipals());
    const next = parseMasterKey(randomBytes(32).toString("base64"), "new");
    await expectCode(rekeyMaster(store, "generate", "cli"), "CONFIG_INVALID");
    const result = await rekeyMaster(store, next, "cli");
    expect(result.keyId).toBe(next.id);
    expect((await open({ REKEY_MASTER_KEY: next.bytes.toString("base64") }).read()).data).toEqual(
      twoPrincipals(),
    );
    await expectCode(open({ REKEY_MASTER_KEY: oldKey }).read(), "STORE_LOCKED");
  });
});

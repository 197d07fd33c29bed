import { randomBytes } from "node:crypto";
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestClock, type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { afterEach, describe, expect, it } from "vitest";
import { createRekey } from "../../engine/create-rekey.js";
import { openKey, openSealedBackup, readKeyFile } from "../encryption/index.js";
import { createFileStore, type FileStore } from "../file-store.js";

// Stores written by rekey at c8484b6 (schema 2, keys in clear), each with the sandbox state it
// ran against, made by `fixtures/generate-schema-2.mjs`.
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const RAW_KEY = /\blfr?_[A-Za-z0-9_-]{43}\b/;

interface Laid {
  dir: string;
  store: FileStore;
  sandbox: RunningSandbox;
  original: string;
}

const open: Laid[] = [];
afterEach(async () => {
  for (const item of open.splice(0)) {
    await item.store.close();
    await item.sandbox.close();
    await rm(dirname(item.dir), { recursive: true, force: true });
  }
});

async function lay(name: string, env: Record<string, string> = {}): Promise<Laid> {
  const source = join(FIXTURES, `schema-2-${name}`);
  const root = await mkdtemp(join(tmpdir(), `rekey-migrate3-${name}-`));
  await copyFile(join(source, "sandbox.json"), join(root, "sandbox.json"));
  const sandbox = await startSandbox({ dataFile: join(root, "sandbox.json") });
  const dir = join(root, "store");
  await mkdir(dir, { mode: 0o700 });
  // The fixtures spell keys "sandbox-key:…"; back to "lf_…" each is what rekey wrote.
  const text = (await readFile(join(source, "credentials.json"), "utf8")).replaceAll(
    '"sandbox-key:',
    '"lf_',
  );
  const original = text.replace(/http:\/\/127\.0\.0\.1:\d+\/ai-agents\/api/g, sandbox.url);
  await writeFile(join(dir, "credentials.json"), original, { mode: 0o600 });
  await copyFile(join(source, "audit.jsonl"), join(dir, "audit.jsonl"));
  await chmod(join(dir, "audit.jsonl"), 0o600);
  const store = createFileStore({ dir, env });
  const laid = { dir, store, sandbox, original };
  open.push(laid);
  return laid;
}

function engine(laid: Laid, store: FileStore = laid.store) {
  const savedAt = [...laid.original.matchAll(/"savedAt":"([^"]+)"/g)].map((m) =>
    Date.parse(m[1] as string),
  );
  const clock = createTestClock(Math.max(...savedAt) + 1000);
  return createRekey({ store, surface: "library", profile: "default", env: {}, clock });
}

describe("migration of schema-2 stores (keys in clear) written by rekey c8484b6", () => {
  it("seals every key on first open, in one step, with a sealed backup and its own key", async () => {
    const laid = await lay("unfinished-rotation");
    expect(laid.original).toMatch(RAW_KEY);
    const before = JSON.parse(laid.original).version as number;
    const snapshot = await laid.store.read();
    expect(snapshot.version).toBe(before + 1);
    expect(snapshot.data.schemaVersion).toBe(3);
    const onDisk = await readFile(join(laid.dir, "credentials.json"), "utf8");
    expect(onDisk).not.toMatch(RAW_KEY);
    expect(JSON.parse(onDisk).data.schemaVersion).toBe(3);
    // The keys read back are the ones the clear store held.
    for (const record of Object.values(snapshot.data.principals)) {
      expect(laid.original).toContain(`"key":"${openKey(record.key ?? "")}"`);
    }
    const backup = await readFile(join(laid.dir, "credentials.schema-2.json"), "utf8");
    expect(backup).not.toMatch(RAW_KEY);
    const key = await readKeyFile(join(laid.dir, "master.key"));
    expect(openSealedBackup(backup, key ? [key] : [], "backup")).toBe(laid.original);
    expect((await readdir(laid.dir)).sort()).toEqual([
      "audit.jsonl",
      "credentials.json",
      "credentials.schema-2.json",
      "master.key",
    ]);
    const health = await laid.store.health();
    expect(health.encryption).toMatchObject({ state: "encrypted", clearKeys: 0 });
    expect((await laid.store.read()).version).toBe(before + 1);
  });

  it("keeps the journal: the unfinished rotation is resolved after the migration", async () => {
    const laid = await lay("unfinished-rotation");
    const rekey = engine(laid);
    const resolutions = await rekey.resolvePending();
    expect(resolutions.map((r) => r.outcome)).toEqual(["not_rotated"]);
    expect((await rekey.whoami()).type).toBe("operator");
    await rekey.close();
  });

  it("a wrong master key locks the journal's store; given the right one, recovery runs", async () => {
    const right = randomBytes(32).toString("base64");
    const laid = await lay("unfinished-rotation", { REKEY_MASTER_KEY: right });
    await laid.store.read();
    const sealed = await readFile(join(laid.dir, "credentials.json"), "utf8");
    const wrongStore = createFileStore({
      dir: laid.dir,
      env: { REKEY_MASTER_KEY: randomBytes(32).toString("base64") },
    });
    const locked = engine(laid, wrongStore);
    await expect(locked.resolvePending()).rejects.toMatchObject({ code: "STORE_LOCKED" });
    await expect(locked.rotateKey()).rejects.toMatchObject({ code: "STORE_LOCKED" });
    await locked.close();
    await wrongStore.close();
    expect(await readFile(join(laid.dir, "credentials.json"), "utf8")).toBe(sealed);
    expect(laid.sandbox.stats().rotations).toBe(0);
    const rekey = engine(laid);
    expect((await rekey.resolvePending()).map((r) => r.outcome)).toEqual(["not_rotated"]);
    await rekey.close();
  });

  it("keeps idempotency records, and rotates under the configured master key", async () => {
    const masterKey = randomBytes(32).toString("base64");
    const laid = await lay("idempotency", { REKEY_MASTER_KEY: masterKey });
    const rekey = engine(laid);
    const { data } = await laid.store.read();
    // (Slots hash the faucet URL, which the test's sandbox changes: checked as records.)
    expect(Object.values(data.idempotency)).toEqual([
      // Written with an HTTP status by schema 2's rekey; read as a remembered result.
      expect.objectContaining({
        state: "done",
        result: { fingerprint: expect.any(String), rotated: true },
      }),
    ]);
    const rotated = await rekey.rotateKey({ force: true });
    expect(rotated.newFingerprint).not.toBe(rotated.oldFingerprint);
    expect(await readFile(join(laid.dir, "credentials.json"), "utf8")).not.toMatch(RAW_KEY);
    // A configured key: no key file is made beside the store.
    expect(await readdir(laid.dir)).not.toContain("master.key");
    expect((await laid.store.health()).encryption).toMatchObject({
      state: "encrypted",
      keySource: "REKEY_MASTER_KEY",
    });
    // Another handle with the same key reads the new key; one with another key is locked.
    const again = createFileStore({ dir: laid.dir, env: { REKEY_MASTER_KEY: masterKey } });
    expect((await again.read()).version).toBe((await laid.store.read()).version);
    await again.close();
    const other = createFileStore({
      dir: laid.dir,
      env: { REKEY_MASTER_KEY: randomBytes(32).toString("base64") },
    });
    await expect(other.read()).rejects.toMatchObject({ code: "STORE_LOCKED" });
    await other.close();
    await rekey.close();
  });
});

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  installKeysAtRestScan,
  RAW_KEY,
  storeFilesHoldingRawKeys,
  takeRawKeysAtRest,
} from "./keys-at-rest.js";

installKeysAtRestScan();

const rawKey = () => `lf_${randomBytes(32).toString("base64url")}`;

/** A temp tree with a store two levels down: a planted clear key, sealed ones, a .env. */
async function plantedTree(clear: boolean) {
  const root = await mkdtemp(join(tmpdir(), "rekey-scan-"));
  const store = join(root, "home", "store");
  await mkdir(store, { recursive: true });
  const key = clear ? rawKey() : "rk1:0123456789abcdef:AAAA";
  await writeFile(
    join(store, "credentials.json"),
    JSON.stringify({ version: 1, data: { principals: { a: { key } } } }),
  );
  await writeFile(join(store, "audit.jsonl"), "{}\n");
  // Delivery targets hold the key by design: not rekey's files.
  await writeFile(join(store, ".env"), `KEY=${rawKey()}\n`);
  const wallet = join(root, "lightning-wallet");
  await mkdir(wallet);
  await writeFile(
    join(wallet, "credentials.json"),
    JSON.stringify({ api_url: "http://127.0.0.1:8787", api_key: rawKey() }),
  );
  return { root, credentials: join(store, "credentials.json") };
}

describe("the raw-key scan", () => {
  it("finds a planted clear key in a store file, not in a delivery target or a sealed store", async () => {
    const planted = await plantedTree(true);
    const sealed = await plantedTree(false);
    try {
      expect(storeFilesHoldingRawKeys(planted.root, true)).toEqual([planted.credentials]);
      expect(storeFilesHoldingRawKeys(sealed.root, true)).toEqual([]);
    } finally {
      await rm(planted.root, { recursive: true, force: true });
      await rm(sealed.root, { recursive: true, force: true });
      // Taken here, or this test would fail: what the next test shows.
      takeRawKeysAtRest();
    }
  });

  it("fails a test that removes a temp dir holding a clear key (the other suites' hook)", async () => {
    const planted = await plantedTree(true);
    await rm(planted.root, { recursive: true, force: true });
    // The afterEach the scan installed would fail this test with exactly this list.
    expect(takeRawKeysAtRest()).toEqual([planted.credentials]);
    const sealed = await plantedTree(false);
    await rm(sealed.root, { recursive: true, force: true });
    expect(takeRawKeysAtRest()).toEqual([]);
  });

  it("finds a key standing alone, not the same characters inside a sealed key's ciphertext", () => {
    const key = rawKey();
    expect(RAW_KEY.test(JSON.stringify({ key }))).toBe(true);
    expect(RAW_KEY.test(`KEY=${key}\n`)).toBe(true);
    // base64url ciphertext holding "lf_" and 43 more base64url characters, as one sealed store
    // in a few hundred does by chance: "-lf_…" and "…lf_…x" are not a key.
    expect(RAW_KEY.test(`"rk1:ab-${key}"`)).toBe(false);
    expect(RAW_KEY.test(`"rk1:${key}Qx"`)).toBe(false);
  });
});

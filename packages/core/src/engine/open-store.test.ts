import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { createMemoryStore } from "../store/memory-store.js";
import type { CredentialStore } from "../store/types.js";
import { openCredentialStore } from "./open-store.js";

describe("openCredentialStore", () => {
  const opened: CredentialStore[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  const open = async (options: Parameters<typeof openCredentialStore>[0]) => {
    const store = await openCredentialStore(options);
    opened.push(store);
    return store;
  };

  it("opens memory, a directory, file:DIR, and the default file store", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rekey-open-store-"));
    dirs.push(dir);
    expect((await open({ spec: "memory", env: {} })).kind).toBe("memory");
    const inDir = (name: string) => join(dir, name, "credentials.json");
    expect((await open({ spec: join(dir, "a"), env: {} })).location).toBe(inDir("a"));
    expect((await open({ spec: `file:${join(dir, "b")}`, env: {} })).location).toBe(inDir("b"));
    const byEnv = await open({ spec: undefined, env: { REKEY_HOME: join(dir, "home") } });
    expect([byEnv.kind, byEnv.location]).toEqual(["file", inDir("home")]);
  });

  it("hands a URL to the opener registered for its scheme, whatever its case", async () => {
    const asked: string[] = [];
    const urlStores = {
      postgres: async (url: string) => {
        asked.push(url);
        return createMemoryStore();
      },
    };
    await open({ spec: " postgres://db/rekey ", env: {}, urlStores });
    await open({ spec: "POSTGRES://db/other", env: {}, urlStores });
    expect(asked).toEqual(["postgres://db/rekey", "POSTGRES://db/other"]);
  });

  it("refuses a URL with no opener as CONFIG_INVALID, without repeating it", async () => {
    const error = await openCredentialStore({
      spec: "mysql://user:hunter2@db/rekey",
      env: {},
      urlStores: { postgres: async () => createMemoryStore() },
    }).catch((caught: unknown) => caught);
    expect(isRekeyError(error) && error.code).toBe("CONFIG_INVALID");
    const text = JSON.stringify((error as { toJSON(): unknown }).toJSON());
    expect(text).not.toContain("hunter2");
    expect(text).toContain("mysql://");
    expect(text).toContain("postgres://...");
  });
});

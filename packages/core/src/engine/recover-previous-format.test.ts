import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/**
 * A store as rekey 0.1 wrote it (schema 1): the profile holds its operator's key with no
 * operator id (rekey 0.1 recorded one only when the faucet's reply named it), so after the
 * migration the profile's operator record is "operator", with no id.
 */
async function previousFormatStore(current: EngineFixture, key: string): Promise<void> {
  const document = {
    version: 3,
    data: {
      schemaVersion: 1,
      profiles: {
        default: {
          baseUrl: current.sandbox.url,
          active: "operator",
          operator: {
            key,
            fingerprint: fingerprint(key),
            savedAt: new Date(current.clock.now()).toISOString(),
            source: "login",
          },
          agents: {},
          intents: {},
          idempotency: {},
        },
      },
    },
  };
  await writeFile(join(current.dir, "credentials.json"), `${JSON.stringify(document)}\n`, {
    mode: 0o600,
  });
}

describe("recover on a profile whose operator record has no id (schema 1)", () => {
  async function setUp() {
    fixture = await startEngineFixture({ store: "file" });
    const own = await fixture.client.register({ name: "ops" });
    const other = await fixture.client.register({ name: "someone else" });
    await previousFormatStore(fixture, own.apiKey);
    const rekey = fixture.rekey();
    // The migrated profile: its operator record is "operator", no id.
    const { data } = await fixture.store.read();
    expect(data.profiles.default?.operator).toBe("operator");
    return { current: fixture, rekey, own, other };
  }

  it("another account's code: refused (CONFIG_INVALID), the profile's key untouched, the other key rescued", async () => {
    const { current, rekey, own, other } = await setUp();
    const refused = await rekey.recover(other.recoveryCode).then(
      () => undefined,
      (error: RekeyError) => error,
    );
    expect(refused?.code).toBe("CONFIG_INVALID");
    expect(refused?.message).toContain("operator 2");
    expect(refused?.message).toContain("not this profile's (operator 1)");
    // The profile still holds operator 1's key, which still works.
    const stored = await storedKey(current.store, "operator");
    expect(stored?.key === undefined ? undefined : openKey(stored.key)).toBe(own.apiKey);
    await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
    const { data } = await current.store.read();
    expect(data.profiles.default?.operator).toBe("operator");
    expect(Object.values(data.principals).some((record) => record.intent !== undefined)).toBe(
      false,
    );
    expect(Object.keys(data.principals).some((id) => id.endsWith("#operator:2"))).toBe(false);
    // Operator 2's new key is in a rescue file, for its own profile.
    expect(await readdir(current.rescueDir)).toEqual([expect.stringMatching(/^operator-2-/)]);
    expect(await rekey.rescuedKeys()).toEqual([
      expect.objectContaining({ principal: "operator:2" }),
    ]);
  });

  it("its own code: recovered, and the profile holds the new, working key", async () => {
    const { current, rekey, own } = await setUp();
    const result = await rekey.recover(own.recoveryCode);
    expect(result.verified).toBe(true);
    await expect(current.client.whoami(own.apiKey)).rejects.toMatchObject({
      code: "UNAUTHORIZED",
    });
    await expect(rekey.whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
    const status = await current.rekey().status();
    expect(status.fingerprint).toBe(result.newFingerprint);
    expect(status.pendingRotation).toBeUndefined();
    expect(await current.rekey().resolvePending()).toEqual([]);
    // The record keeps its name and learns its id: the next check needs no question.
    const { data } = await current.store.read();
    expect(data.profiles.default?.operator).toBe("operator");
    expect(Object.values(data.principals)).toEqual([
      expect.objectContaining({ principal: "operator", operatorId: 1 }),
    ]);
    await expect(current.rekey().whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
  });

  it("a record whose key is already dead cannot tell its account: the recovered key is its way back", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const own = await fixture.client.register({ name: "ops" });
    // The stored key died elsewhere (recovered by hand): nothing tells whose it was.
    await fixture.client.recover(own.recoveryCode);
    await previousFormatStore(fixture, own.apiKey);
    const rekey = fixture.rekey();
    const result = await rekey.recover(own.recoveryCode);
    expect(result.verified).toBe(true);
    // The result names the account it restored: the profile could not check it first.
    expect(result.operatorId).toBe(1);
    await expect(fixture.rekey().whoami()).resolves.toMatchObject({ type: "operator", id: 1 });
    expect((await fixture.rekey().status()).fingerprint).toBe(result.newFingerprint);
  });
});

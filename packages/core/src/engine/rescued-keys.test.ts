import { readdir } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";
import { writeRescueFile } from "./rescue.js";

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
    const left = await writeRescueFile(fixture.rescueDir, {
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

import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { createFileStore } from "../store/file-store.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("register", () => {
  it("lets one of two racing registrations in a profile create an account; the other asks nothing", async () => {
    fixture = await startEngineFixture({ store: "file" });
    // Two handles on one directory, as two processes would have.
    const other = createFileStore({ dir: fixture.dir, env: {} });
    try {
      const engines = [fixture.rekey(), fixture.rekey({ store: other })];
      const outcomes = await Promise.allSettled(
        engines.map((rekey, index) => rekey.register({ name: `racer ${index}` })),
      );
      const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
      const lost = outcomes.filter((outcome) => outcome.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const reason = (lost[0] as PromiseRejectedResult).reason;
      expect(isRekeyError(reason) && reason.code).toBe("CONFIG_INVALID");
      // The faucet made one account, and its key is the one stored.
      expect(fixture.sandbox.stats().calls.register).toBe(1);
      const winner = (won[0] as PromiseFulfilledResult<{ fingerprint: string }>).value;
      expect((await storedKey(fixture.store, "operator"))?.fingerprint).toBe(winner.fingerprint);
    } finally {
      await other.close();
    }
  });
});

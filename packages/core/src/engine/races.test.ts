// Two processes (two store handles on one directory) racing on the operator's key.
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { createFileStore, type FileStore } from "../store/file-store.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";
import type { RotationResult } from "./types.js";

interface Race {
  fixture: EngineFixture;
  /** A second handle on the fixture's directory, as another process would have. */
  other: FileStore;
}

let race: Race | undefined;
afterEach(async () => {
  await race?.other.close();
  await race?.fixture.close();
  race = undefined;
});

/**
 * A file-store fixture and a second handle on its directory. With `slowRotation`, the faucet
 * commits the first operator rotation at once and answers 600 ms later.
 */
async function startRace(options: { slowRotation?: boolean } = {}): Promise<Race> {
  const fixture = await startEngineFixture({
    store: "file",
    ...(options.slowRotation
      ? {
          sandbox: {
            faults: [
              { action: "regenerate_operator_key", nth: 1, kind: "delay", delayMs: 600 } as const,
            ],
          },
        }
      : {}),
  });
  race = { fixture, other: createFileStore({ dir: fixture.dir, env: {} }) };
  return race;
}

/** Resolves once the faucet has the first operator rotation (its reply still on the way). */
async function rotationReachedFaucet(fixture: EngineFixture): Promise<void> {
  while ((fixture.sandbox.stats().calls.regenerate_operator_key ?? 0) === 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("register", () => {
  it("lets one of two racing registrations in a profile create an account; the other asks nothing", async () => {
    const { fixture, other } = await startRace();
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
  });
});

describe("recover", () => {
  it("racing a rotation in another process, leaves the store with the key that works", async () => {
    // The faucet commits the rotation at once but answers late: recovery happens in between.
    const { fixture, other } = await startRace({ slowRotation: true });
    const rotating = fixture.rekey();
    const { recoveryCode } = await rotating.register({ name: "ops" });
    const recovering = fixture.rekey({ store: other });
    const rotation = rotating.rotateKey() as Promise<RotationResult>;
    await rotationReachedFaucet(fixture);
    const recovered = await recovering.recover(recoveryCode);
    await rotation;
    const stored = await storedKey(fixture.store, "operator");
    expect(stored?.fingerprint).toBe(recovered.newFingerprint);
    expect((await fixture.client.whoami(stored?.key ?? "")).type).toBe("operator");
  });
});

describe("rotateKey across processes", () => {
  it("joins a rotation that another process has in flight instead of refusing its cooldown", async () => {
    // The faucet commits the rotation at once and answers 600 ms later.
    const { fixture, other } = await startRace({ slowRotation: true });
    const first = fixture.rekey();
    await first.register({ name: "ops" });
    const rotation = first.rotateKey() as Promise<RotationResult>;
    await rotationReachedFaucet(fixture);
    // The first rotation's intent is in the store; this one must wait for it to finish.
    const joined = (await fixture.rekey({ store: other }).rotateKey()) as RotationResult;
    const original = await rotation;
    expect(joined).toMatchObject({ shared: true, newFingerprint: original.newFingerprint });
    expect(original.shared).toBe(false);
    expect(fixture.sandbox.stats().rotations).toBe(1);
  });
});

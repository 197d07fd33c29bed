// Two processes (two store handles on one directory) racing on the operator's key.
import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { openKey } from "../store/encryption/sealed-key.js";
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
 * commits the first operator rotation at once and answers 2 s later.
 */
async function startRace(options: { slowRotation?: boolean } = {}): Promise<Race> {
  const fixture = await startEngineFixture({
    store: "file",
    ...(options.slowRotation
      ? {
          sandbox: {
            faults: [
              { action: "regenerate_operator_key", nth: 1, kind: "delay", delayMs: 2000 } as const,
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
    // Forced: the rotation it waits for starts a cooldown, inside which a recovery is refused
    // unless forced (a deliberate recovery is what this race is about).
    const recovered = await recovering.recover(recoveryCode, { force: true });
    await rotation;
    const stored = await storedKey(fixture.store, "operator");
    expect(stored?.fingerprint).toBe(recovered.newFingerprint);
    expect((await fixture.client.whoami(openKey(stored?.key ?? ""))).type).toBe("operator");
  });
});

describe("rotateKey across processes", () => {
  it("joins a rotation that another process has in flight instead of refusing its cooldown", async () => {
    // The faucet commits the rotation at once and answers 2 s later.
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

describe("login", () => {
  it("of two principals into one profile at once: both records kept, one pointer, no error swallowed", async () => {
    const { fixture, other } = await startRace();
    const first = await fixture.client.register({ name: "first" });
    const second = await fixture.client.register({ name: "second" });
    const engines = [fixture.rekey(), fixture.rekey({ store: other })];
    const outcomes = await Promise.allSettled([
      engines[0]?.login(first.apiKey),
      engines[1]?.login(second.apiKey),
    ]);
    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const lost = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(isRekeyError((lost[0] as PromiseRejectedResult).reason, "CONFIG_INVALID")).toBe(true);
    const { data } = await fixture.store.read();
    const operators = Object.values(data.principals).filter((record) =>
      record.principal.startsWith("operator:"),
    );
    expect(operators.map((record) => openKey(record.key ?? "")).sort()).toEqual(
      [first.apiKey, second.apiKey].sort(),
    );
    const pointed = data.profiles.default?.operator;
    expect([`operator:${first.operatorId}`, `operator:${second.operatorId}`]).toContain(pointed);
  });

  it("never stores a key that a rotation elsewhere killed while the login checked it", async () => {
    // The login's whoami is answered (the key alive) 2 s after the faucet read it; the
    // rotation commits inside that window.
    const fixture = await startEngineFixture({
      store: "file",
      sandbox: { faults: [{ action: "whoami", nth: 1, kind: "delay", delayMs: 2000 }] },
    });
    race = { fixture, other: createFileStore({ dir: fixture.dir, env: {} }) };
    const rekey = fixture.rekey();
    await rekey.register({});
    const oldKey = openKey((await storedKey(fixture.store, "operator"))?.key ?? "");
    const login = fixture.rekey({ store: race.other, profile: "copy" }).login(oldKey);
    while ((fixture.sandbox.stats().calls.whoami ?? 0) === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const rotated = await rekey.rotateKey();
    const loggedIn = await login.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isRekeyError(loggedIn, "UNAUTHORIZED")).toBe(true);
    expect((await storedKey(fixture.store, "operator"))?.fingerprint).toBe(rotated.newFingerprint);
    expect((await fixture.store.read()).data.profiles.copy).toBeUndefined();
  });
});

describe("two profiles on one principal", () => {
  it("racing rotations of one agent from two profiles make one rotation, shared by both", async () => {
    const { fixture, other } = await startRace();
    const operator = fixture.rekey();
    await operator.register({});
    const { agentId } = await operator.createAgent({ name: "w" });
    const agentKey = openKey((await storedKey(fixture.store, agentId))?.key ?? "");
    const asAgent = fixture.rekey({ store: other, profile: "agent" });
    await asAgent.login(agentKey);
    const before = fixture.sandbox.stats().rotations;
    const results = await Promise.all([
      operator.rotateKey({ target: { kind: "agent", agentId } }),
      asAgent.rotateKey(),
    ]);
    expect(fixture.sandbox.stats().rotations - before).toBe(1);
    expect(new Set(results.map((result) => result.newFingerprint)).size).toBe(1);
    expect((await asAgent.status()).fingerprint).toBe(results[0]?.newFingerprint);
    expect((await asAgent.whoami()).type).toBe("agent");
  });
});

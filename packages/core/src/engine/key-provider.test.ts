import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agent, OPERATOR } from "../principal.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";

let fixture: EngineFixture;
beforeEach(async () => {
  fixture = await startEngineFixture({ store: "file" });
});
afterEach(async () => {
  await fixture.close();
});

describe("keyProvider", () => {
  it("switches to a key another engine rotated, without a restart", async () => {
    const session = fixture.rekey({ surface: "mcp" });
    await session.register({});
    const before = await session.keyProvider.current();

    const elsewhere = fixture.rekey({ surface: "cli" });
    await elsewhere.rotateKey();
    const rotated = await storedKey(fixture.store, "operator");

    // withKey notices the dead key, re-reads the store and retries with the rotated one,
    // even before the file watcher has fired.
    const identity = await session.keyProvider.withKey(undefined, (key) =>
      fixture.client.whoami(key),
    );
    expect(identity.type).toBe("operator");
    const after = await session.keyProvider.current();
    expect(after.fingerprint).toBe(rotated?.fingerprint);
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });

  it("hands out each principal's own key, and NOT_FOUND for one it does not hold", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const { agentId } = await rekey.createAgent({ name: "w" });
    expect((await rekey.keyProvider.current(OPERATOR)).fingerprint).toBe(
      (await storedKey(fixture.store, "operator"))?.fingerprint,
    );
    expect((await rekey.keyProvider.current(agent(agentId))).fingerprint).toBe(
      (await storedKey(fixture.store, agentId))?.fingerprint,
    );
    await expect(rekey.keyProvider.current(agent(agentId + 1000))).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("does not retry an UNAUTHORIZED when the key did not change", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    let calls = 0;
    await expect(
      rekey.keyProvider.withKey(undefined, async () => {
        calls++;
        return fixture.client.whoami("lf_not-a-key-at-all-xxxxxxxxxxxxxx");
      }),
    ).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    expect(calls).toBe(1);
  });
});

describe("withIdempotency", () => {
  it("runs once per key, replays the stored reply, refuses another body, and survives a new engine", async () => {
    const rekey = fixture.rekey({ surface: "http" });
    await rekey.register({});
    let runs = 0;
    const run = async () => {
      runs++;
      const result = await rekey.rotateKey({ force: true });
      return { fingerprint: "newFingerprint" in result ? result.newFingerprint : "" };
    };
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => rekey.withIdempotency("key-1", "hash-a", run)),
    );
    expect(runs).toBe(1);
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect(new Set(replies.map((reply) => JSON.stringify(reply.result))).size).toBe(1);
    expect(replies.filter((reply) => !reply.replayed)).toHaveLength(1);

    const restarted = fixture.rekey({ surface: "http" });
    const again = await restarted.withIdempotency("key-1", "hash-a", run);
    expect(again).toMatchObject({ replayed: true, result: replies[0]?.result });
    await expect(restarted.withIdempotency("key-1", "hash-b", run)).rejects.toMatchObject({
      code: "IDEMPOTENCY_KEY_REUSED",
    });
    expect(runs).toBe(1);

    fixture.clock.advance(24 * 60 * 60_000 + 1);
    await restarted.withIdempotency("key-1", "hash-a", run);
    expect(runs).toBe(2);
  });

  it("keeps each scope's slots apart and at most maxRecords of them", async () => {
    const rekey = fixture.rekey({ surface: "http" });
    await rekey.register({});
    const answer = (result: string) => async () => result;
    await rekey.withIdempotency("deploy-1", "hash-a", answer("a"), { scope: "token-a" });
    // Another scope's request under the same key is its own, not a reuse of token-a's.
    const other = await rekey.withIdempotency("deploy-1", "hash-b", answer("b"), {
      scope: "token-b",
    });
    expect(other).toEqual({ result: "b", replayed: false });
    expect(
      await rekey.withIdempotency("deploy-1", "hash-a", answer("x"), { scope: "token-a" }),
    ).toEqual({ result: "a", replayed: true });

    for (let index = 0; index < 5; index++) {
      fixture.clock.advance(1000);
      await rekey.withIdempotency(`flood-${index}`, "h", answer(String(index)), {
        scope: "token-b",
        maxRecords: 3,
      });
    }
    const slots = Object.keys((await fixture.store.read()).data.idempotency);
    // token-a's one record, and token-b's newest three.
    expect(slots).toHaveLength(4);
    expect(
      await rekey.withIdempotency("deploy-1", "hash-a", answer("x"), { scope: "token-a" }),
    ).toMatchObject({ result: "a", replayed: true });
    expect(
      await rekey.withIdempotency("flood-4", "h", answer("x"), { scope: "token-b", maxRecords: 3 }),
    ).toMatchObject({ result: "4", replayed: true });
  });
});

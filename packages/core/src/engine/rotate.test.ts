import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRekeyError, type RekeyError } from "../errors.js";
import { agent, OPERATOR } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { createFileStore } from "../store/file-store.js";
import {
  type EngineFixture,
  intentsIn,
  startEngineFixture,
  storedKey,
} from "./engine.test-helper.js";
import type { RotationResult } from "./types.js";

let fixture: EngineFixture;
beforeEach(async () => {
  fixture = await startEngineFixture();
});
afterEach(async () => {
  await fixture.close();
});

async function expectCode(promise: Promise<unknown>, code: string): Promise<RekeyError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isRekeyError(error), `expected RekeyError ${code}, got ${String(error)}`).toBe(true);
  expect((error as RekeyError).code).toBe(code);
  return error as RekeyError;
}

describe("rotateKey", () => {
  it("rotates the operator: new key stored and working, old key dead, 60-minute cooldown", async () => {
    const rekey = fixture.rekey();
    await rekey.register({ name: "ops" });
    const before = await storedKey(fixture.store, "operator");
    const result = (await rekey.rotateKey()) as RotationResult;

    const after = await storedKey(fixture.store, "operator");
    expect(after?.fingerprint).toBe(result.newFingerprint);
    expect(result.oldFingerprint).toBe(before?.fingerprint);
    expect(result.newFingerprint).not.toBe(result.oldFingerprint);
    expect(result.verified).toBe(true);
    expect(result.shared).toBe(false);
    expect(result.apiKey).toBeUndefined();
    expect(Date.parse(result.cooldownUntil) - fixture.clock.now()).toBe(60 * 60_000);
    await expect(fixture.client.whoami(openKey(after?.key ?? ""))).resolves.toMatchObject({
      type: "operator",
    });
    await expectCode(fixture.client.whoami(openKey(before?.key ?? "")), "UNAUTHORIZED");
    expect(await intentsIn(fixture.store)).toEqual([]);
    const history = await rekey.history();
    expect(history.at(-1)).toMatchObject({
      action: "rotate",
      outcome: "success",
      newFingerprint: result.newFingerprint,
    });
    expect(await rekey.verifyHistory()).toMatchObject({ ok: true });
  });

  it("returns the raw key only when reveal is asked", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const result = (await rekey.rotateKey({ reveal: true })) as RotationResult;
    expect(result.apiKey).toBe(openKey((await storedKey(fixture.store, "operator"))?.key ?? ""));
  });

  it("an operator rotates its agent: stored under the agent, the operator stays active, 30-minute cooldown", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const created = await rekey.createAgent({ name: "worker" });
    const operatorBefore = await storedKey(fixture.store, "operator");
    const result = (await rekey.rotateKey({ target: agent(created.agentId) })) as RotationResult;

    expect(result.label).toBe(`agent ${created.agentId}`);
    expect(Date.parse(result.cooldownUntil) - fixture.clock.now()).toBe(30 * 60_000);
    expect((await storedKey(fixture.store, created.agentId))?.fingerprint).toBe(
      result.newFingerprint,
    );
    expect(openKey((await storedKey(fixture.store, "operator"))?.key ?? "")).toBe(
      openKey(operatorBefore?.key ?? ""),
    );
    expect(await rekey.activePrincipal()).toEqual(OPERATOR);
    expect(fixture.sandbox.stats().rotationsByAction).toMatchObject({ regenerate_agent_key: 1 });
  });

  it("an agent rotates itself, and is refused another agent without any upstream call", async () => {
    const operator = fixture.rekey();
    await operator.register({});
    const first = await operator.createAgent({ name: "a" });
    const second = await operator.createAgent({ name: "b" });
    const agentKey = openKey((await storedKey(fixture.store, first.agentId))?.key ?? "");
    const agentSession = fixture.rekey({ profile: "agent" });
    await agentSession.login(agentKey);

    const result = (await agentSession.rotateKey()) as RotationResult;
    expect(result.principal).toEqual(agent(first.agentId));
    expect(Date.parse(result.cooldownUntil) - fixture.clock.now()).toBe(30 * 60_000);

    const rotationsBefore = fixture.sandbox.stats().rotations;
    await expectCode(agentSession.rotateKey({ target: agent(second.agentId) }), "FORBIDDEN");
    expect(fixture.sandbox.stats().rotations).toBe(rotationsBefore);
  });

  it("an agent session reads its own status, and is refused another agent's and the operator's", async () => {
    const operator = fixture.rekey();
    await operator.register({});
    const first = await operator.createAgent({ name: "a" });
    const second = await operator.createAgent({ name: "b" });
    // The same profile holds the operator and both agents; the session acts as the first agent.
    const agentSession = fixture.rekey();
    await agentSession.login(openKey((await storedKey(fixture.store, first.agentId))?.key ?? ""), {
      makeActive: true,
    });
    expect(await agentSession.activePrincipal()).toEqual(agent(first.agentId));

    expect((await agentSession.status()).principal).toEqual(agent(first.agentId));
    expect((await agentSession.status(agent(first.agentId))).hasKey).toBe(true);
    await expectCode(agentSession.status(agent(second.agentId)), "FORBIDDEN");
    await expectCode(agentSession.status(OPERATOR), "FORBIDDEN");
  });

  it("refuses a second rotation inside the cooldown, allows it with force or once the cooldown ends", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    await rekey.rotateKey();
    fixture.clock.advance(59 * 60_000);
    const refused = await expectCode(rekey.rotateKey(), "COOLDOWN_ACTIVE");
    expect(refused.details.retryAfterSeconds).toBe(60);
    expect(refused.details.cooldownUntil).toBeDefined();
    expect(fixture.sandbox.stats().rotations).toBe(1);

    await expect(rekey.rotateKey({ force: true })).resolves.toMatchObject({ dryRun: false });
    expect(fixture.sandbox.stats().rotations).toBe(2);
    fixture.clock.advance(60 * 60_000);
    await expect(rekey.rotateKey()).resolves.toMatchObject({ dryRun: false });
  });

  it("a dry run returns the plan and calls nothing upstream", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const created = await rekey.createAgent({ name: "w" });
    const callsBefore = JSON.stringify(fixture.sandbox.stats().calls);
    const plan = await rekey.rotateKey({ target: agent(created.agentId), dryRun: true });
    expect(plan).toMatchObject({
      dryRun: true,
      action: "regenerate_agent_key",
      cooldownMinutes: 30,
      blockedByCooldown: false,
      currentFingerprint: created.fingerprint,
    });
    expect(JSON.stringify(fixture.sandbox.stats().calls)).toBe(callsBefore);
  });

  it("collapses concurrent rotations in one process into one upstream rotation", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const results = (await Promise.all(
      Array.from({ length: 10 }, () => rekey.rotateKey()),
    )) as RotationResult[];
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect(new Set(results.map((result) => result.newFingerprint)).size).toBe(1);
    expect(results.filter((result) => result.shared)).toHaveLength(9);
  });

  it("a second engine that read the old key gets the first one's rotation instead of rotating again", async () => {
    const first = fixture.rekey();
    const second = fixture.rekey();
    await first.register({});
    const [a, b] = (await Promise.all([first.rotateKey(), second.rotateKey()])) as RotationResult[];
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect(a?.newFingerprint).toBe(b?.newFingerprint);
    expect([a?.shared, b?.shared].sort()).toEqual([false, true]);
  });

  it("reports missing keys, unknown agents and refusals with their codes", async () => {
    const empty = fixture.rekey({ profile: "empty" });
    await expectCode(empty.rotateKey(), "NOT_FOUND");
    const rekey = fixture.rekey();
    await rekey.register({});
    const principalsBefore = Object.keys((await fixture.store.read()).data.principals);
    await expectCode(rekey.rotateKey({ target: agent(424242) }), "NOT_FOUND");
    expect(await intentsIn(fixture.store)).toEqual([]);
    // The refused agent leaves no empty record behind (`rekey profiles show` listed it).
    expect(Object.keys((await fixture.store.read()).data.principals)).toEqual(principalsBefore);
    expect((await rekey.history()).at(-1)).toMatchObject({
      outcome: "failure",
      errorCode: "NOT_FOUND",
    });
  });

  it("registers nothing upstream when the store could not keep the key and recovery code", async () => {
    const blockedDir = join(fixture.dir, "a-file");
    await writeFile(blockedDir, "x");
    const blocked = fixture.rekey({ store: createFileStore({ dir: join(blockedDir, "rekey") }) });
    await expectCode(blocked.register({}), "STORE_UNAVAILABLE");
    expect(fixture.sandbox.stats().calls.register ?? 0).toBe(0);
  });

  it("registers nothing upstream when the store's master key source gives no key", async () => {
    // An empty store with a broken source (a truncated REKEY_MASTER_KEY, a failing
    // REKEY_MASTER_KEY_CMD): the account was created, then its key and recovery code went to a
    // rescue file in clear, reported as STORE_UNAVAILABLE.
    const locked = fixture.rekey({
      store: createFileStore({
        dir: join(fixture.dir, "locked"),
        env: { REKEY_MASTER_KEY: "dG9vLXNob3J0" },
      }),
    });
    await expectCode(locked.register({}), "STORE_LOCKED");
    expect(fixture.sandbox.stats().calls.register ?? 0).toBe(0);
  });

  it("never sends a key to another URL than the one it was saved for", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const elsewhere = fixture.rekey({ baseUrl: "https://faucet.example.com/ai-agents/api" });
    await expectCode(elsewhere.rotateKey(), "CONFIG_INVALID");
    expect(fixture.sandbox.stats().rotations).toBe(0);
  });

  it("a key from the environment seeds a principal but never overrides a rotated key in the store", async () => {
    const operatorKey = (await fixture.client.register({})).apiKey;
    const seeded = fixture.rekey({ env: { REKEY_API_KEY: operatorKey } });
    expect((await seeded.status()).keySource).toBe("env");
    const result = (await seeded.rotateKey()) as RotationResult;
    const again = fixture.rekey({ env: { REKEY_API_KEY: operatorKey } });
    const status = await again.status();
    expect(status.keySource).toBe("store");
    expect(status.fingerprint).toBe(result.newFingerprint);
    await expect(again.whoami()).resolves.toMatchObject({ type: "operator" });
  });

  it("acting as a principal the store does not hold never falls back to the environment's key of another", async () => {
    // `--as agent:99` (or REKEY_AS) with the operator's key in LIGHTNING_WALLET_API_KEY: the
    // session acted as the operator, so an agent's MCP session could rotate the operator key.
    const operatorKey = (await fixture.client.register({})).apiKey;
    await fixture.rekey().login(operatorKey);
    const asAgent = fixture.rekey({
      actAs: "agent:99",
      env: { REKEY_API_KEY: operatorKey },
    });
    // Nor does any operation act as the operator, or as a profile without a key: each says the
    // store holds no key for agent 99.
    for (const operation of [
      () => asAgent.activePrincipal(),
      () => asAgent.status(),
      () => asAgent.status(OPERATOR),
      () => asAgent.whoami(),
      () => asAgent.listAgents(),
      () => asAgent.keyProvider.current(OPERATOR),
      () => asAgent.rotateKey({ force: true }),
      () => asAgent.rotateKey({ target: OPERATOR, force: true }),
    ]) {
      const error = await expectCode(operation(), "NOT_FOUND");
      expect(error.message).toBe(`The store holds no key for agent 99 on ${fixture.sandbox.url}`);
      expect(error.details).toMatchObject({ principal: agent(99), missing: "profile" });
    }
    expect(fixture.sandbox.stats().rotations).toBe(0);
    // With agent 99's own key in the environment, the session acts as it.
    const { apiKey: agentKey, agentId } = await fixture.client.createAgent(operatorKey, {
      name: "w",
    });
    const seeded = fixture.rekey({ actAs: `agent:${agentId}`, env: { REKEY_API_KEY: agentKey } });
    expect(await seeded.activePrincipal()).toEqual(agent(agentId));
    expect((await seeded.status()).keySource).toBe("env");
  });

  it("a rotation reply without a key is never a success: the engine recovers the key by request_id", async () => {
    await fixture.close();
    fixture = await startEngineFixture({
      sandbox: { faults: [{ action: "regenerate_operator_key", nth: 1, kind: "omit_key" }] },
    });
    const rekey = fixture.rekey();
    await rekey.register({});
    // The faucet rotated but its reply had no key. The engine must not store an empty key: it
    // treats the reply as invalid, finds the old key dead, and replays the request_id.
    const result = (await rekey.rotateKey()) as RotationResult;
    const stored = await storedKey(fixture.store, "operator");
    expect(stored?.fingerprint).toBe(result.newFingerprint);
    await expect(fixture.client.whoami(openKey(stored?.key ?? ""))).resolves.toMatchObject({
      type: "operator",
    });
    expect(fixture.sandbox.stats().rotations).toBe(1);
    expect((await rekey.history()).at(-1)).toMatchObject({
      action: "resolve",
      outcome: "recovered",
    });
  });

  it("without request_id support, a keyless rotation reply is reported as KEY_LOST with the way back", async () => {
    await fixture.close();
    fixture = await startEngineFixture({
      sandbox: {
        requestIdSupport: false,
        faults: [{ action: "regenerate_operator_key", nth: 1, kind: "omit_key" }],
      },
    });
    const rekey = fixture.rekey();
    await rekey.register({});
    const error = await expectCode(rekey.rotateKey(), "KEY_LOST");
    expect(error.details.recovery).toMatch(/rekey recover/);
    expect(await intentsIn(fixture.store)).toEqual([]);
    expect((await rekey.history()).at(-1)).toMatchObject({ outcome: "key_lost" });
  });
});

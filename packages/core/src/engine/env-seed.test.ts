import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { agent, OPERATOR } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import {
  Crash,
  crashingAt,
  type EngineFixture,
  settle,
  startEngineFixture,
  storedKey,
} from "./engine.test-helper.js";

/**
 * The environment's key (LIGHTNING_WALLET_API_KEY, REKEY_API_KEY) seeds a profile that has no
 * principal yet, or the profile's own principal: never another one in its place.
 */
let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** An operator profile whose operator key was lost mid-rotation, and its agent's live key. */
async function operatorKeyLost(env: EngineFixture) {
  const operator = env.rekey();
  await operator.register({});
  const operatorKey = openKey((await storedKey(env.store, "operator"))?.key ?? "");
  const { apiKey: agentKey, agentId } = await env.client.createAgent(operatorKey, { name: "w" });
  const crashing = env.rekey({ hooks: crashingAt("upstream-replied") });
  expect(await settle(crashing.rotateKey({ force: true }))).toBeInstanceOf(Crash);
  // The next process finds the loss (no request_id replay) and records it.
  expect(isRekeyError(await settle(env.rekey().whoami()), "KEY_LOST")).toBe(true);
  return { agentKey, agentId };
}

describe("the environment's key and a profile acting as another principal", () => {
  it("an operator profile whose key is lost stays KEY_LOST with an agent's key in the environment", async () => {
    fixture = await startEngineFixture({ sandbox: { requestIdSupport: false } });
    const { agentKey, agentId } = await operatorKeyLost(fixture);
    const rotationsBefore = fixture.sandbox.stats().rotations;
    const seeded = fixture.rekey({ env: { LIGHTNING_WALLET_API_KEY: agentKey } });

    // Status reports the operator's loss, not the agent as this profile's principal.
    const status = await seeded.status();
    expect(status.principal).toEqual(OPERATOR);
    expect(status.hasKey).toBe(false);
    expect(status.keyLost).toBeDefined();
    // Nothing acts as the agent in the operator's place.
    expect(await seeded.activePrincipal()).toBeUndefined();
    expect(isRekeyError(await settle(seeded.rotateKey({ force: true })), "KEY_LOST")).toBe(true);
    expect(isRekeyError(await settle(seeded.whoami()), "KEY_LOST")).toBe(true);
    expect(fixture.sandbox.stats().rotations).toBe(rotationsBefore);

    // Once the loss is acknowledged the profile holds no key: still not the agent's.
    await seeded.acknowledgeKeyLost();
    const after = await seeded.status();
    expect(after.principal).toEqual(OPERATOR);
    expect(after.hasKey).toBe(false);
    expect(await seeded.activePrincipal()).toBeUndefined();
    expect(await settle(seeded.rotateKey({ force: true }))).toMatchObject({ code: "NOT_FOUND" });
    expect(fixture.sandbox.stats().rotations).toBe(rotationsBefore);

    // Acting as the agent explicitly (`--as agent:N`) still takes the agent's own key.
    const asAgent = fixture.rekey({
      actAs: `agent:${agentId}`,
      env: { LIGHTNING_WALLET_API_KEY: agentKey },
    });
    expect(await asAgent.activePrincipal()).toEqual(agent(agentId));
  });

  it("a profile with no principal yet is still seeded by the environment's key", async () => {
    fixture = await startEngineFixture();
    const operatorKey = (await fixture.client.register({})).apiKey;
    const { apiKey: agentKey, agentId } = await fixture.client.createAgent(operatorKey, {
      name: "w",
    });
    const seeded = fixture.rekey({ env: { LIGHTNING_WALLET_API_KEY: agentKey } });
    expect(await seeded.activePrincipal()).toEqual(agent(agentId));
    expect((await seeded.status()).keySource).toBe("env");
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { type EngineFixture, startEngineFixture } from "../engine/engine.test-helper.js";
import { isRekeyError } from "../errors.js";
import { createFileStore } from "../store/file-store.js";
import { listRotationPolicies, setRotationPolicy } from "./policies.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function world() {
  fixture = await startEngineFixture({ store: "file" });
  const rekey = fixture.rekey();
  const { operatorId } = await rekey.register({ name: "ops" });
  await rekey.createAgent({ name: "a" });
  await rekey.createAgent({ name: "b" });
  const scope = {
    store: fixture.store,
    profileName: "default",
    baseUrl: fixture.sandbox.url,
    clock: fixture.clock,
  };
  return { fixture, scope, operatorId };
}

describe("setRotationPolicy and listRotationPolicies", () => {
  it("sets, lists, survives a reopened file store, and clears", async () => {
    const { fixture, scope, operatorId } = await world();
    const operator = await setRotationPolicy(scope, { kind: "active" }, { maxAge: "90d" });
    expect(operator.map((entry) => entry.principal)).toEqual([`operator:${operatorId}`]);
    await setRotationPolicy(scope, { kind: "all-agents" }, { maxAge: "30d", jitter: "1h" });

    const reopened = createFileStore({ dir: fixture.dir, env: {} });
    const listed = await listRotationPolicies({ ...scope, store: reopened });
    await reopened.close();
    expect(listed.map((entry) => [entry.principal, entry.policy.maxAgeSeconds])).toEqual([
      [`operator:${operatorId}`, 90 * 86_400],
      ["agent:1", 30 * 86_400],
      ["agent:2", 30 * 86_400],
    ]);

    await setRotationPolicy(scope, { kind: "agent", agentId: 2 }, undefined);
    expect((await listRotationPolicies(scope)).map((entry) => entry.principal)).toEqual([
      `operator:${operatorId}`,
      "agent:1",
    ]);
  });

  it("acting as an agent, the policy is that agent's", async () => {
    const { scope } = await world();
    const set = await setRotationPolicy(
      { ...scope, actAs: "agent:2" },
      { kind: "active" },
      {
        maxAge: "7d",
      },
    );
    expect(set.map((entry) => entry.principal)).toEqual(["agent:2"]);
  });

  it("refuses an unknown agent and a bad policy, and writes nothing", async () => {
    const { fixture, scope } = await world();
    const before = (await fixture.store.read()).version;
    const unknown = await setRotationPolicy(
      scope,
      { kind: "agent", agentId: 9 },
      {
        maxAge: "7d",
      },
    ).catch((error: unknown) => error);
    expect(isRekeyError(unknown, "NOT_FOUND")).toBe(true);
    const bad = await setRotationPolicy(
      scope,
      { kind: "all-agents" },
      {
        maxAge: "7d",
        window: "daily 02:00-04:00 Atlantis/Capital",
      },
    ).catch((error: unknown) => error);
    expect(isRekeyError(bad, "INVALID_INPUT")).toBe(true);
    expect((await fixture.store.read()).version).toBe(before);
  });
});

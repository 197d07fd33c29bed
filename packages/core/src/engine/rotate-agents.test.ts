import { afterEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { agent } from "../principal.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";
import { planAgentRotation, rotateAgents } from "./rotate-agents.js";
import type { Rekey } from "./types.js";

// Bulk agent rotation against the sandbox on a real file store: a faucet outage in the middle
// of a run, the resumed run, and the limits a caller asks for.

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function operatorWithAgents(
  names: string[],
  faults: { action: "regenerate_agent_key"; nth: number; kind: "status_503" }[] = [],
) {
  fixture = await startEngineFixture({ store: "file", sandbox: { faults } });
  const rekey = fixture.rekey();
  await rekey.register({ name: "fleet owner" });
  for (const name of names) await rekey.createAgent({ name });
  const current = fixture;
  const agentRotations = () => current.sandbox.stats().rotationsByAction.regenerate_agent_key ?? 0;
  return { fixture: current, rekey, agentRotations };
}

describe("rotateAgents", () => {
  it("plans without rotating, survives a failed agent, and a re-run rotates only what is left", async () => {
    const { fixture, rekey, agentRotations } = await operatorWithAgents(
      ["alpha", "beta", "gamma"],
      [{ action: "regenerate_agent_key", nth: 2, kind: "status_503" }],
    );
    const plan = await planAgentRotation(rekey);
    expect(plan.toRotate.map((entry) => entry.name)).toEqual(["alpha", "beta", "gamma"]);
    expect(plan.skipped).toEqual([]);
    expect(agentRotations()).toBe(0);

    const ticks: string[] = [];
    const first = await rotateAgents(rekey, {
      plan,
      concurrency: 1,
      onRotated: (outcome) => ticks.push(`${outcome.name}:${outcome.result}`),
    });
    expect(ticks).toEqual(["alpha:rotated", "beta:failed", "gamma:rotated"]);
    expect(first.map((outcome) => outcome.result)).toEqual(["rotated", "failed", "rotated"]);
    expect(first[1]?.error?.code).toMatch(/^UPSTREAM_/);
    expect(agentRotations()).toBe(2);
    // A rotated agent's store holds the key its outcome names, and no outcome carries a key.
    const alpha = first[0];
    expect(alpha?.newFingerprint).toBeDefined();
    expect(await storedKey(fixture.store, alpha?.agentId ?? 0)).toBeDefined();
    const current = await rekey.keyProvider.current(agent(alpha?.agentId ?? 0));
    expect(current.fingerprint).toBe(alpha?.newFingerprint);
    expect(first.every((outcome) => outcome.apiKey === undefined)).toBe(true);

    const resumed = await rotateAgents(rekey);
    expect(resumed.map((outcome) => [outcome.name, outcome.result])).toEqual([
      ["alpha", "already_rotated"],
      ["beta", "rotated"],
      ["gamma", "already_rotated"],
    ]);
    expect(agentRotations()).toBe(3);

    const idle = await rotateAgents(rekey);
    expect(idle.every((outcome) => outcome.result === "already_rotated")).toBe(true);
    expect(idle.every((outcome) => outcome.cooldownUntil !== undefined)).toBe(true);
    expect(agentRotations()).toBe(3);

    const forced = await rotateAgents(rekey, { force: true, reveal: true });
    expect(forced.map((outcome) => outcome.result)).toEqual(["rotated", "rotated", "rotated"]);
    expect(forced.every((outcome) => outcome.apiKey?.startsWith("lf_"))).toBe(true);
    expect(agentRotations()).toBe(6);
  });

  it("reports an agent rotated by someone else since the plan as already rotated", async () => {
    const { fixture, rekey, agentRotations } = await operatorWithAgents(["alpha", "beta"]);
    const plan = await planAgentRotation(rekey);
    // Another process rotates beta between the plan and the run.
    const beta = plan.toRotate[1];
    await fixture.rekey().rotateKey({ target: agent(beta?.id ?? 0) });
    const outcomes = await rotateAgents(rekey, { plan });
    expect(outcomes.map((outcome) => outcome.result)).toEqual(["rotated", "already_rotated"]);
    expect(outcomes[1]?.cooldownUntil).toBeDefined();
    expect(agentRotations()).toBe(2);
  });

  it("keeps at most `concurrency` rotations in flight, and refuses a concurrency out of range", async () => {
    const { rekey, agentRotations } = await operatorWithAgents(["a", "b", "c", "d", "e"]);
    let inFlight = 0;
    let most = 0;
    // The engine itself, counting the rotations in flight through its public method.
    const counting: Rekey = {
      ...rekey,
      rotateKey: (async (request?: Parameters<Rekey["rotateKey"]>[0]) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          return await rekey.rotateKey(request);
        } finally {
          inFlight -= 1;
        }
      }) as Rekey["rotateKey"],
    };
    for (const concurrency of [0, 17, 1.5]) {
      const refused = await rotateAgents(counting, { concurrency }).catch((error) => error);
      expect(isRekeyError(refused, "INVALID_INPUT")).toBe(true);
    }
    expect(agentRotations()).toBe(0);

    const outcomes = await rotateAgents(counting, { concurrency: 2 });
    expect(outcomes.map((outcome) => outcome.result)).toEqual(Array(5).fill("rotated"));
    expect(most).toBe(2);
    expect(agentRotations()).toBe(5);
  });
});

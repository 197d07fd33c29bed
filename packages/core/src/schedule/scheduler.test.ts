import { afterEach, describe, expect, it } from "vitest";
import { type EngineFixture, startEngineFixture } from "../engine/engine.test-helper.js";
import type { ScheduleEvent } from "./events.js";
import { setRotationPolicy } from "./policies.js";
import { createScheduler } from "./scheduler.js";

const HOUR = 3_600_000;
let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("createScheduler", () => {
  it("one leader rotates; the follower takes over when the leader stops; events once each", async () => {
    fixture = await startEngineFixture({ store: "file" });
    const rekey = fixture.rekey();
    await rekey.register({ name: "ops" });
    await rekey.createAgent({ name: "bot" });
    await setRotationPolicy(
      {
        store: fixture.store,
        profileName: "default",
        baseUrl: fixture.sandbox.url,
        clock: fixture.clock,
      },
      { kind: "agent", agentId: 1 },
      { maxAge: "2h", grace: "1h" },
    );
    const events: ScheduleEvent[] = [];
    const sink = { emit: (event: ScheduleEvent) => void events.push(event) };
    const world = fixture;
    const make = () =>
      createScheduler({
        rekey: world.rekey(),
        store: world.store,
        clock: world.clock,
        events: sink,
      });
    const first = make();
    const second = make();
    expect(await first.tick()).toMatchObject({ leader: true });
    expect(await second.tick()).toEqual({ leader: false });

    fixture.clock.advance(2 * HOUR);
    const rotated = await first.tick();
    expect(rotated.report?.results[0]).toMatchObject({ principal: "agent:1", result: "rotated" });
    expect(await second.tick()).toEqual({ leader: false });
    // The 30-minute cooldown ends between two ticks.
    fixture.clock.advance(31 * 60_000);
    await first.tick();
    expect(events.map((event) => event.type)).toEqual(["rotation.succeeded", "cooldown.ended"]);

    await first.stop();
    expect(await second.tick()).toMatchObject({ leader: true });
    expect(second.isLeader()).toBe(true);

    // Overdue (no faucet answer would change that: the window is ignored here, the grace
    // passed) is announced once, not on every tick.
    fixture.clock.advance(2 * HOUR - 31 * 60_000 + HOUR + 1);
    await fixture.sandbox.close();
    await second.tick();
    await second.tick();
    expect(events.filter((event) => event.type === "key.overdue")).toHaveLength(1);
    expect(events.filter((event) => event.type === "rotation.failed")).toHaveLength(2);
    await second.stop();
  });
});

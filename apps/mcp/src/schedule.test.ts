import { setRotationPolicy } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startWorld, textOf, type World } from "./world.test-helper.js";

let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

describe("scheduled rotation, as a model sees it", () => {
  it("get_key_status tells when the key is due, and when it is overdue", async () => {
    const session = await world.connect();
    const before = await session.call("get_key_status");
    expect(before.structuredContent).not.toHaveProperty("schedule");

    await setRotationPolicy(
      {
        store: world.store,
        profileName: "default",
        baseUrl: await world.setup.baseUrl(),
        clock: world.clock,
      },
      { kind: "active" },
      { maxAge: "7d", grace: "1d" },
    );
    const savedAt = Date.parse(String(before.structuredContent?.saved_at));
    const dueAt = new Date(savedAt + 7 * 86_400_000).toISOString();
    const scheduled = await session.call("get_key_status");
    expect(scheduled.structuredContent).toMatchObject({
      schedule: { due_at: dueAt, next_rotation_at: dueAt, overdue: false },
    });
    expect(textOf(scheduled)).toContain(`A scheduled rotation will replace it at ${dueAt}`);

    world.clock.set(savedAt + 9 * 86_400_000);
    const overdue = await session.call("get_key_status");
    expect(overdue.structuredContent).toMatchObject({ schedule: { overdue: true } });
    expect(textOf(overdue)).toContain("OVERDUE");
  });

  it("rotate_api_key's description says a scheduled rotation may exist", async () => {
    const session = await world.connect();
    const { tools } = await session.client.listTools();
    const rotate = tools.find((tool) => tool.name === "rotate_api_key");
    expect(rotate?.description).toContain("A scheduled rotation may exist");
    const status = tools.find((tool) => tool.name === "get_key_status");
    expect(status?.outputSchema?.properties).toHaveProperty("schedule");
  });
});

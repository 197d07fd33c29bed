import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fingerprint } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startWorld, type World } from "./world.test-helper.js";

let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

describe("rotate_api_key with delivery targets", () => {
  it("lists the deliveries in the result and tells the model about a failed one", async () => {
    const envFile = join(world.dir, "svc.env");
    await writeFile(envFile, "LIGHTNING_WALLET_API_KEY=old\n", { mode: 0o600 });
    await world.setup.addDeliveryTarget({
      kind: "dotenv",
      path: envFile,
      variable: "LIGHTNING_WALLET_API_KEY",
    });
    await world.setup.addDeliveryTarget({
      kind: "exec",
      command: [process.execPath, "-e", "process.exit(3)"],
    });
    const session = await world.connect();
    const result = await session.call("rotate_api_key");
    expect(result.isError).toBeFalsy();
    const content = result.structuredContent as {
      fingerprint: string;
      deliveries: unknown[];
      message: string;
    };
    expect(content.deliveries).toEqual([
      expect.objectContaining({
        target: "dotenv-1",
        status: "delivered",
        fingerprint: content.fingerprint,
      }),
      expect.objectContaining({
        target: "exec-1",
        status: "failed",
        error: expect.objectContaining({ code: "UPSTREAM_UNAVAILABLE" }),
      }),
    ]);
    expect(content.message).toContain("Delivering the new key failed for exec-1");
    const delivered = /=(.*)\n/.exec(await readFile(envFile, "utf8"))?.[1] ?? "";
    expect(fingerprint(delivered)).toBe(content.fingerprint);
    expect(JSON.stringify(result)).not.toContain(delivered);
    const status = await session.call("get_key_status");
    expect((status.structuredContent as { deliveries: unknown[] }).deliveries).toEqual([
      expect.objectContaining({ target: "dotenv-1", state: "current" }),
      expect.objectContaining({ target: "exec-1", state: "failing" }),
    ]);
    await session.close();
  });
});

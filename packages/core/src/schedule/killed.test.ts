import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { RotationStep } from "../engine/context.js";
import {
  type EngineFixture,
  intentsIn,
  startEngineFixture,
  storedKey,
} from "../engine/engine.test-helper.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { setRotationPolicy } from "./policies.js";
import { rotateDue } from "./rotate-due.js";

const CHILD = join(import.meta.dirname, "..", "..", "test-fixtures", "rotate-due-child.mjs");
const HOUR = 3_600_000;

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

function runChild(args: Record<string, unknown>): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (_code, signal) => resolve(signal));
  });
}

const KILL_POINTS: RotationStep[] = [
  "intent-written",
  "upstream-replied",
  "key-stored",
  "verified",
];

describe("a scheduler process killed in the middle of a due rotation", () => {
  it.each(KILL_POINTS)(
    "killed after %s: skipped while unfinished, then one rotation in all, the key alive",
    async (step) => {
      fixture = await startEngineFixture({ store: "file" });
      const rekey = fixture.rekey({ lockLeaseMs: 2000 });
      await rekey.register({ name: "ops" });
      await rekey.createAgent({ name: "bot" });
      const scope = {
        store: fixture.store,
        profileName: "default",
        baseUrl: fixture.sandbox.url,
        clock: fixture.clock,
      };
      await setRotationPolicy(scope, { kind: "agent", agentId: 1 }, { maxAge: "2h" });
      fixture.clock.advance(2 * HOUR);
      const rotations = () => fixture?.sandbox.stats().rotationsByAction.regenerate_agent_key ?? 0;

      const signal = await runChild({
        dir: fixture.dir,
        url: fixture.sandbox.url,
        nowMs: fixture.clock.now(),
        crashAfter: step,
      });
      expect(signal).toBe("SIGKILL");
      expect(await intentsIn(fixture.store)).toHaveLength(1);

      // The next cron run a minute later leaves the unfinished rotation alone.
      fixture.clock.advance(60_000);
      const next = await rotateDue({ rekey, store: fixture.store, clock: fixture.clock });
      expect(next.results[0]).toMatchObject({ principal: "agent:1", result: "skipped_unfinished" });

      // doctor --repair resolves it; the run after that rotates only if the faucet never did.
      await rekey.resolvePending();
      expect(await intentsIn(fixture.store)).toEqual([]);
      const after = await rotateDue({ rekey, store: fixture.store, clock: fixture.clock });
      expect(after.results[0]?.result).toBe(step === "intent-written" ? "rotated" : "not_due");
      expect(rotations()).toBe(1);
      const key = await storedKey(fixture.store, 1);
      await expect(fixture.client.whoami(openKey(key?.key ?? ""))).resolves.toMatchObject({
        type: "agent",
      });
    },
    30_000,
  );
});

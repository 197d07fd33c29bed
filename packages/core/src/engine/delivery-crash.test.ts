import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { publicClientKey } from "../delivery/public-client.test-helper.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type { DeliveryStep, RotationStep } from "./context.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";
import { runRotationChild } from "./rotate-child.test-helper.js";

/**
 * kill -9 of a real rotating process at every step after the faucet rotated, through each
 * target's delivery: afterwards every target either holds the store's current key or is
 * reported stale/failing (never "current" with an older key), and the next process delivers.
 */
let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const STEPS: (RotationStep | DeliveryStep)[] = [
  "key-stored",
  "verified",
  "intent-cleared",
  "delivery-pending",
  "delivery-written",
];

describe("kill -9 during delivery", () => {
  it.each(STEPS)(
    "killed after %s: each target is current or reported stale, then finished by the next process",
    async (step) => {
      fixture = await startEngineFixture({ store: "file" });
      const rekey = fixture.rekey();
      await rekey.register({});
      const home = join(fixture.dir, "lw");
      const envFile = join(fixture.dir, "service.env");
      await writeFile(envFile, "# service\nLIGHTNING_WALLET_API_KEY=old\n", { mode: 0o600 });
      await rekey.addDeliveryTarget({
        kind: "lightning-wallet",
        path: join(home, "credentials.json"),
      });
      await rekey.addDeliveryTarget({
        kind: "dotenv",
        path: envFile,
        variable: "LIGHTNING_WALLET_API_KEY",
      });

      const killed = await runRotationChild({
        dir: fixture.dir,
        url: fixture.sandbox.url,
        crashAfter: step,
      });
      expect(killed.signal).toBe("SIGKILL");

      const next = fixture.rekey({ lockLeaseMs: 2000 });
      const status = await next.status();
      const current = await storedKey(fixture.store, "operator");
      const heldBy = {
        "lightning-wallet-1": publicClientKey({ LIGHTNING_WALLET_HOME: home }, "/")?.apiKey,
        "dotenv-1": /LIGHTNING_WALLET_API_KEY=(.*)\n/.exec(await readFile(envFile, "utf8"))?.[1],
      };
      for (const target of status.deliveries ?? []) {
        const held = heldBy[target.target as keyof typeof heldBy];
        if (target.state === "current")
          expect(held, `${step}: ${target.target}`).toBe(openKey(current?.key ?? ""));
        else expect(["stale", "failing"]).toContain(target.state);
      }
      // The second target was never reached: reported stale, not current.
      expect(status.deliveries?.find((target) => target.target === "dotenv-1")?.state).toBe(
        "stale",
      );

      // The next process finishes (waiting out the dead process's lease on the delivery lock).
      await next.deliver();
      const after = await next.status();
      expect(after.deliveries?.map((target) => target.state)).toEqual(["current", "current"]);
      expect(publicClientKey({ LIGHTNING_WALLET_HOME: home }, "/")?.apiKey).toBe(
        openKey(current?.key ?? ""),
      );
      expect(await readFile(envFile, "utf8")).toBe(
        `# service\nLIGHTNING_WALLET_API_KEY=${openKey(current?.key ?? "")}\n`,
      );
      await expect(fixture.client.whoami(openKey(current?.key ?? ""))).resolves.toMatchObject({
        type: "operator",
      });
      expect(await next.verifyHistory()).toMatchObject({ ok: true });
    },
    40_000,
  );
});

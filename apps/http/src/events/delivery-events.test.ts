import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { systemClock } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHttpApp } from "../app.js";
import { type Harness, startHarness } from "../harness.test-helper.js";
import { createLogger } from "../logger.js";
import { createEventHub, type EventHub } from "./event-hub.js";
import { readEvents } from "./sse-client.test-helper.js";

let harness: Harness;
let events: EventHub;
let app: ReturnType<typeof createHttpApp>;
beforeEach(async () => {
  harness = await startHarness();
  // The harness's app has no event hub: this one serves the same engine and store with one.
  events = createEventHub({ store: harness.store, clock: systemClock });
  app = createHttpApp({
    rekey: harness.rekey,
    events,
    tokens: [harness.tokens.status.config, harness.tokens.rotate.config],
    rateLimit: { capacity: 100, windowMs: 60_000 },
    logger: createLogger({ level: "silent" }),
    clock: systemClock,
  });
});
const call = (method: string, path: string, token: string, body?: unknown) =>
  Promise.resolve(
    app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
afterEach(async () => {
  events.close();
  await harness.close();
});

describe("GET /v1/events and deliveries", () => {
  it("streams each delivery outcome (pending, then delivered or failed) with principal and fingerprints, never the key", async () => {
    const envFile = join(harness.dir, "svc.env");
    await writeFile(envFile, "LIGHTNING_WALLET_API_KEY=old\n", { mode: 0o600 });
    await harness.rekey.addDeliveryTarget({
      kind: "dotenv",
      path: envFile,
      variable: "LIGHTNING_WALLET_API_KEY",
    });
    await harness.rekey.addDeliveryTarget({
      kind: "exec",
      command: [process.execPath, "-e", "process.exit(4)"],
    });
    const response = await call("GET", "/v1/events", harness.tokens.status.raw);
    const stream = readEvents(response);
    try {
      const rotated = await call("POST", "/v1/rotate", harness.tokens.rotate.raw, {});
      const { fingerprint } = (await rotated.json()) as { fingerprint: string };
      const outcomes = [];
      for (const target of ["dotenv-1", "exec-1"]) {
        for (const outcome of ["pending", target === "dotenv-1" ? "success" : "failure"]) {
          outcomes.push(
            await stream.next(
              (event) =>
                event.type === "delivery" &&
                event.data.new_fingerprint === fingerprint &&
                String(event.data.delivery_target).startsWith(target) &&
                event.data.outcome === outcome,
            ),
          );
        }
      }
      expect(
        outcomes.map((event) => [event.data.principal, event.data.operator_id, event.data.outcome]),
      ).toEqual([
        [{ kind: "operator" }, 1, "pending"],
        [{ kind: "operator" }, 1, "success"],
        [{ kind: "operator" }, 1, "pending"],
        [{ kind: "operator" }, 1, "failure"],
      ]);
      expect(outcomes[3]?.data.error_code).toBe("UPSTREAM_UNAVAILABLE");
      expect(outcomes.every((event) => typeof event.id === "string")).toBe(true);
      const key = /=(.*)\n/.exec(await readFile(envFile, "utf8"))?.[1] ?? "";
      expect(stream.text()).not.toContain(key);
    } finally {
      await stream.close();
    }
  });
});

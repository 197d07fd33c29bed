import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRekey, openCredentialStore, setRotationPolicy } from "@rekey/core";
import { scheduleEventSchema } from "@rekey/core/vocabulary";
import { afterEach, describe, expect, it } from "vitest";
import type { HubEvent } from "./events/event-hub.js";
import { type Faucet, startFaucet, startHarness } from "./harness.test-helper.js";
import { createLogger } from "./logger.js";
import { createHttpScheduler } from "./scheduler.js";

const HOUR = 3_600_000;
const SECRET = "0123456789abcdef0123456789abcdef";
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A notification receiver on loopback that checks each signature as a user's would. */
async function receiver() {
  const received: { type: string; signed: boolean }[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    request.on("end", () => {
      const header = String(request.headers["rekey-signature"] ?? "");
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header) ?? [];
      const expected = createHmac("sha256", SECRET).update(`${t}.${body}`).digest("hex");
      received.push({ type: JSON.parse(body).event.type, signed: v1 === expected });
      response.statusCode = 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, received };
}

describe("rekey-http's scheduler: events, notifications, metrics", () => {
  it("a faucet failing the rotation: events published and notified signed, key age and overdue in /metrics", async () => {
    const faucet: Faucet = await startFaucet({
      faults: [1, 2, 3].map((nth) => ({
        action: "regenerate_agent_key",
        nth,
        kind: "status_503" as const,
      })),
    });
    cleanups.push(() => faucet.close());
    const clock = faucet.clock ?? { now: Date.now };
    const store = await openCredentialStore({ spec: faucet.dir, env: {} });
    const rekey = createRekey({ store, surface: "http", env: {}, clock });
    cleanups.push(async () => {
      await rekey.close();
      await store.close();
    });
    await rekey.createAgent({ name: "bot" });
    await setRotationPolicy(
      { store, profileName: "default", baseUrl: await rekey.baseUrl(), clock },
      { kind: "agent", agentId: 1 },
      { maxAge: "1h", grace: "1h" },
    );
    const hook = await receiver();
    const published: Omit<HubEvent, "id" | "seq">[] = [];
    const schedule = createHttpScheduler({
      rekey,
      store,
      clock,
      logger: createLogger({ level: "silent" }),
      intervalMs: 60_000,
      notify: { url: hook.url, secret: SECRET },
      publish: (event) => published.push(event),
    });
    cleanups.push(() => schedule.scheduler.stop());

    await schedule.scheduler.tick();
    expect(schedule.renderMetrics()).toMatch(/^rekey_key_age_seconds\{principal="agent:1"\} 0$/m);
    faucet.clock?.advance(HOUR);
    await schedule.scheduler.tick();
    faucet.clock?.advance(HOUR);
    await schedule.scheduler.tick();
    await schedule.scheduler.tick();

    expect(published.map((event) => event.type)).toEqual([
      "rotation.failed",
      "rotation.failed",
      "key.overdue",
      "rotation.failed",
    ]);
    expect(published[2]).toMatchObject({ principal: { kind: "agent", agentId: 1 } });
    // Its data on /v1/events is the vocabulary's schedule event, as strict as its schema.
    expect(scheduleEventSchema.strict().parse(published[2]?.data)).toMatchObject({
      type: "key.overdue",
      principal: { kind: "agent", agent_id: 1 },
      label: "agent 1",
    });
    await expect.poll(() => hook.received.length).toBe(4);
    expect(hook.received.every((entry) => entry.signed)).toBe(true);
    const metrics = schedule.renderMetrics();
    expect(metrics).toMatch(/^rekey_scheduler_leader 1$/m);
    expect(metrics).toMatch(/^rekey_keys_overdue 1$/m);
    expect(metrics).toMatch(/^rekey_key_age_seconds\{principal="agent:1"\} 7200$/m);
    expect(metrics).toMatch(/^rekey_schedule_events_total\{type="rotation.failed"\} 3$/m);
    expect(metrics).toMatch(/^rekey_scheduler_results_total\{result="failed"\} 3$/m);

    // The faucet answers again: rotated, no longer overdue.
    await schedule.scheduler.tick();
    expect(schedule.renderMetrics()).toMatch(/^rekey_keys_overdue 0$/m);
    expect(schedule.recentEvents().at(-1)).toMatchObject({ type: "rotation.succeeded" });
  });

  it("a scheduled rotation shows in the next GET /v1/status at once, even with status bodies kept", async () => {
    const harness = await startHarness({ app: { statusMaxAgeMs: 60_000 } });
    cleanups.push(() => harness.close());
    const clock = harness.clock ?? { now: Date.now };
    await harness.rekey.createAgent({ name: "bot" });
    await setRotationPolicy(
      {
        store: harness.store,
        profileName: "default",
        baseUrl: await harness.rekey.baseUrl(),
        clock,
      },
      { kind: "agent", agentId: 1 },
      { maxAge: "1h", grace: "1h" },
    );
    const schedule = createHttpScheduler({
      rekey: harness.rekey,
      store: harness.store,
      clock,
      logger: createLogger({ level: "silent" }),
      intervalMs: 60_000,
      keysChanged: harness.keysChanged,
    });
    cleanups.push(() => schedule.scheduler.stop());
    const poll = async () =>
      (
        (await (
          await harness.call("GET", "/v1/status?agent_id=1", { token: harness.tokens.status })
        ).json()) as { fingerprint?: string }
      ).fingerprint;
    const before = await poll();
    harness.clock?.advance(2 * HOUR);
    await schedule.scheduler.tick();
    expect(schedule.recentEvents().at(-1)).toMatchObject({ type: "rotation.succeeded" });
    const after = (await harness.rekey.status({ kind: "agent", agentId: 1 })).fingerprint;
    expect(after).not.toBe(before);
    expect(await poll()).toBe(after);
  });
});

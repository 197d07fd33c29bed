import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type EngineFixture, startEngineFixture, storedKey } from "../engine/engine.test-helper.js";
import { updateStore, writableRecord } from "../engine/principal-records.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { faucetIdOf, recordIdOf } from "../store/record-ids.js";
import type { ScheduleEvent } from "./events.js";
import { listRotationPolicies, setRotationPolicy } from "./policies.js";
import { jitterOffsetMs } from "./policy.js";
import { type DueReport, rotateDue } from "./rotate-due.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** An operator with `count` agents, every key stored, on a fresh sandbox and memory store. */
async function fleet(count: number) {
  fixture = await startEngineFixture();
  const rekey = fixture.rekey();
  await rekey.register({ name: "ops" });
  for (let index = 1; index <= count; index++) await rekey.createAgent({ name: `bot-${index}` });
  const scope = {
    store: fixture.store,
    profileName: rekey.profileName,
    baseUrl: fixture.sandbox.url,
    clock: fixture.clock,
  };
  return { fixture, rekey, scope };
}

function collector() {
  const events: ScheduleEvent[] = [];
  return { events, emit: (event: ScheduleEvent) => void events.push(event) };
}

describe("rotateDue", () => {
  /**
   * Drives `rotateDue` from one scheduled time to the next (its `nextRotationAt`) on the test
   * clock that the sandbox shares, and records when each principal was rotated.
   */
  async function driveUntil(
    { fixture, rekey }: Awaited<ReturnType<typeof fleet>>,
    end: number,
    concurrency: number,
  ): Promise<Map<string, string[]>> {
    const rotations = new Map<string, string[]>();
    const run = () => rotateDue({ rekey, store: fixture.store, clock: fixture.clock, concurrency });
    let report: DueReport = await run();
    while (report.nextRotationAt !== undefined && Date.parse(report.nextRotationAt) < end) {
      fixture.clock.set(Date.parse(report.nextRotationAt));
      report = await run();
      for (const outcome of report.results) {
        expect(outcome.result, `${outcome.principal} at ${report.checkedAt}`).toMatch(
          /^(rotated|not_due)$/,
        );
        if (outcome.result !== "rotated") continue;
        rotations.set(outcome.principal, [
          ...(rotations.get(outcome.principal) ?? []),
          report.checkedAt,
        ]);
      }
    }
    return rotations;
  }

  // 02:00 in Berlin: 01:00Z in winter, 00:00Z in summer time (CEST, from 2026-03-29 01:00Z to
  // 2026-10-25 01:00Z). On 29 March 02:00 does not exist and the window opens at 03:00 CEST
  // (01:00Z); on 25 October 02:00 comes twice and the first (CEST, 00:00Z) counts.
  const berlinTwoAm = (utcMidnight: number) => {
    const summer = utcMidnight >= Date.UTC(2026, 2, 30) && utcMidnight <= Date.UTC(2026, 9, 25);
    return utcMidnight + (summer ? 0 : HOUR);
  };
  const iso = (ms: number) => new Date(ms).toISOString();

  it("runs a year of daily schedules for 50 agents at the exact times the window says, DST included", async () => {
    const world = await fleet(50);
    const start = world.fixture.clock.now(); // 2026-01-01T00:00Z, when every key was stored
    await setRotationPolicy(
      world.scope,
      { kind: "all-agents" },
      {
        maxAge: "1d",
        window: "daily 02:00-04:00 Europe/Berlin",
      },
    );
    const rotations = await driveUntil(world, Date.UTC(2027, 0, 1, 12), 10);
    const expected = Array.from({ length: 365 }, (_, day) =>
      iso(berlinTwoAm(start + (day + 1) * DAY)),
    );
    expect(rotations.size).toBe(50);
    for (const times of rotations.values()) expect(times).toEqual(expected);
    // Every rotation is in the history, and the keys in the store are the faucet's live ones.
    const history = await world.rekey.history();
    expect(history.filter((entry) => entry.action === "rotate")).toHaveLength(50 * 365);
    const last = await storedKey(world.fixture.store, 50);
    await expect(world.fixture.client.whoami(openKey(last?.key ?? ""))).resolves.toMatchObject({
      type: "agent",
    });
  }, 180_000);

  it("spreads 50 agents over the jitter, each at its own fixed offset every day", async () => {
    const world = await fleet(50);
    const start = world.fixture.clock.now();
    await setRotationPolicy(
      world.scope,
      { kind: "all-agents" },
      {
        maxAge: "1d",
        window: "daily 02:00-04:00 Europe/Berlin",
        jitter: "20m",
      },
    );
    const rotations = await driveUntil(world, start + 14 * DAY + 12 * HOUR, 4);
    const faucet = faucetIdOf(world.fixture.sandbox.url);
    expect(rotations.size).toBe(50);
    const offsets = new Set<number>();
    for (const [principal, times] of rotations) {
      const offset = jitterOffsetMs(recordIdOf(faucet, principal), 1200);
      offsets.add(offset);
      expect(times).toEqual(
        Array.from({ length: 14 }, (_, day) => iso(berlinTwoAm(start + (day + 1) * DAY) + offset)),
      );
    }
    expect(offsets.size).toBeGreaterThan(40);
  }, 60_000);

  it("skips an unfinished rotation and a dry run rotates nothing", async () => {
    const { fixture, rekey, scope } = await fleet(2);
    await setRotationPolicy(scope, { kind: "all-agents" }, { maxAge: "2h" });
    const faucet = faucetIdOf(fixture.sandbox.url);
    // What a process killed in the middle of a rotation leaves: the journal entry.
    await updateStore(fixture.store, (draft) => {
      const record = writableRecord(draft, faucet, "agent:1");
      if (!record?.fingerprint) throw new Error("agent 1 has no key");
      record.intent = {
        requestId: "killed-run",
        principal: "agent:1",
        actor: "agent:1",
        oldFingerprint: record.fingerprint,
        startedAt: new Date(fixture.clock.now()).toISOString(),
        phase: "requested",
        surface: "cli",
      };
    });
    fixture.clock.advance(2 * HOUR);
    const before = await storedKey(fixture.store, 2);
    const plan = await rotateDue({
      rekey,
      store: fixture.store,
      clock: fixture.clock,
      dryRun: true,
    });
    expect(plan.results.map((outcome) => [outcome.principal, outcome.result])).toEqual([
      ["agent:1", "skipped_unfinished"],
      ["agent:2", "would_rotate"],
    ]);
    expect((await storedKey(fixture.store, 2))?.fingerprint).toBe(before?.fingerprint);
    const run = await rotateDue({ rekey, store: fixture.store, clock: fixture.clock });
    expect(run.results.map((outcome) => outcome.result)).toEqual(["skipped_unfinished", "rotated"]);
  });

  it("two replicas running the same due run rotate each key once", async () => {
    const { fixture, rekey, scope } = await fleet(6);
    await setRotationPolicy(scope, { kind: "all-agents" }, { maxAge: "1d" });
    fixture.clock.advance(DAY);
    const other = fixture.rekey();
    const [first, second] = await Promise.all([
      rotateDue({ rekey, store: fixture.store, clock: fixture.clock }),
      rotateDue({ rekey: other, store: fixture.store, clock: fixture.clock }),
    ]);
    const rotated = [...first.results, ...second.results].filter(
      (outcome) => outcome.result === "rotated",
    );
    expect(rotated.map((outcome) => outcome.principal).sort()).toEqual(
      ["agent:1", "agent:2", "agent:3", "agent:4", "agent:5", "agent:6"].sort(),
    );
    const history = (await rekey.history()).filter((entry) => entry.action === "rotate");
    expect(history).toHaveLength(6);
  });

  it("a clock that jumps back after a rotation rotates nothing again", async () => {
    const { fixture, rekey, scope } = await fleet(1);
    await setRotationPolicy(scope, { kind: "agent", agentId: 1 }, { maxAge: "1d" });
    fixture.clock.advance(DAY);
    const run = () => rotateDue({ rekey, store: fixture.store, clock: fixture.clock });
    expect((await run()).results[0]?.result).toBe("rotated");
    for (const jump of [-HOUR, -DAY, -2 * DAY]) {
      fixture.clock.advance(jump);
      expect((await run()).results[0]).toMatchObject({ result: "not_due", overdue: false });
    }
    expect(fixture.sandbox.stats().rotationsByAction.regenerate_agent_key).toBe(1);
  });

  it("a faucet down for a day: failures reported, the key turns overdue, then is rotated", async () => {
    fixture = await startEngineFixture({
      sandbox: {
        faults: Array.from({ length: 24 }, (_, index) => ({
          action: "regenerate_agent_key",
          nth: index + 1,
          kind: "status_503" as const,
        })),
      },
    });
    const rekey = fixture.rekey();
    await rekey.register({ name: "ops" });
    await rekey.createAgent({ name: "bot" });
    const scope = {
      store: fixture.store,
      profileName: rekey.profileName,
      baseUrl: fixture.sandbox.url,
      clock: fixture.clock,
    };
    await setRotationPolicy(scope, { kind: "agent", agentId: 1 }, { maxAge: "1d", grace: "12h" });
    const sink = collector();
    const before = await storedKey(fixture.store, 1);
    fixture.clock.advance(DAY);
    for (let hour = 0; hour < 24; hour++) {
      const report = await rotateDue({
        rekey,
        store: fixture.store,
        clock: fixture.clock,
        events: sink,
      });
      expect(report.results[0]).toMatchObject({
        result: "failed",
        error: { code: "UPSTREAM_UNAVAILABLE" },
      });
      fixture.clock.advance(HOUR);
    }
    expect((await storedKey(fixture.store, 1))?.fingerprint).toBe(before?.fingerprint);
    await expect(fixture.client.whoami(openKey(before?.key ?? ""))).resolves.toMatchObject({
      type: "agent",
    });
    const types = sink.events.map((event) => event.type);
    expect(types.filter((type) => type === "rotation.failed")).toHaveLength(24);
    // Overdue from 12 hours past the due time: reported on each of the last 12 runs.
    expect(types.filter((type) => type === "key.overdue")).toHaveLength(12);
    expect(JSON.stringify(sink.events)).not.toContain(openKey(before?.key ?? "-"));

    const back = await rotateDue({
      rekey,
      store: fixture.store,
      clock: fixture.clock,
      events: sink,
    });
    expect(back.results[0]).toMatchObject({ result: "rotated", overdue: false });
    expect(sink.events.at(-1)).toMatchObject({
      type: "rotation.succeeded",
      principal: "agent:1",
      oldFingerprint: before?.fingerprint,
    });
    const [status] = await listRotationPolicies(scope);
    expect(status?.due).toMatchObject({ due: false, overdue: false });
  });

  it("a rotated key that a delivery target could not take is a delivery.failed event", async () => {
    const { fixture, rekey, scope } = await fleet(1);
    const dir = join(fixture.dir, "consumer");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const down = join(dir, "down");
    const script = `const fs=require("fs");process.stdin.resume();process.stdin.on("end",()=>process.exit(fs.existsSync(${JSON.stringify(down)})?1:0))`;
    await rekey.addDeliveryTarget(
      { kind: "exec", command: [process.execPath, "-e", script] },
      { kind: "agent", agentId: 1 },
    );
    await setRotationPolicy(scope, { kind: "agent", agentId: 1 }, { maxAge: "1d" });
    await writeFile(down, "");
    fixture.clock.advance(DAY + HOUR);
    const sink = collector();
    const report = await rotateDue({
      rekey,
      store: fixture.store,
      clock: fixture.clock,
      events: sink,
    });
    expect(report.results.find((outcome) => outcome.principal === "agent:1")?.result).toBe(
      "rotated",
    );
    const failed = sink.events.filter((event) => event.type === "delivery.failed");
    expect(failed).toEqual([
      expect.objectContaining({
        principal: "agent:1",
        target: "exec-1",
        newFingerprint: (await storedKey(fixture.store, 1))?.fingerprint,
        message: expect.stringContaining("exit"),
      }),
    ]);
  });
});

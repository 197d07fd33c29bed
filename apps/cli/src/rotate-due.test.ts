import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createTestClock } from "@rekey/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  startCliHarness,
} from "./cli-harness.test-helper.js";
import { doctorDocument, dueDocument, policyDocument } from "./json-schemas.test-helper.js";

// One sandbox, one file store and one test clock shared by the CLI and the faucet: each step
// moves the clock to where a cron job would run `rekey rotate --due`.
describe("rekey policy and rekey rotate --due", () => {
  let harness: CliHarness;
  const clock = createTestClock(Date.UTC(2026, 0, 5, 12)); // Monday noon UTC
  const agentRotations = () => harness.sandbox.stats().rotationsByAction.regenerate_agent_key ?? 0;

  beforeAll(async () => {
    harness = await startCliHarness({ clock });
    await registerOperator(harness);
    for (const name of ["alpha", "beta"]) {
      expect((await harness.run(["agents", "create", name])).code).toBe(0);
    }
  });
  afterAll(() => harness.close());

  it("refuses a bad policy with a clear error and writes nothing", async () => {
    const short = await harness.run(["policy", "set", "--agent", "1", "--max-age", "20m"]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("not longer than the 30-minute withdrawal cooldown");
    const zone = await harness.run([
      "policy",
      "set",
      "--all-agents",
      "--max-age",
      "1d",
      "--window",
      "daily 02:00-04:00 Mars/Base",
    ]);
    expect(zone.code).toBe(2);
    expect(zone.stderr).toContain('unknown time zone "Mars/Base"');
    const never = await harness.run([
      "policy",
      "set",
      "--max-age",
      "7d",
      "--window",
      "Mon 03:00-03:00",
    ]);
    expect(never.code).toBe(2);
    expect(never.stderr).toContain("never opens");
    const list = await harness.runJson(["policy", "list"]);
    expect(policyDocument.parse(list.json)).toMatchObject({ action: "list", policies: [] });
  });

  it("sets a policy on every agent and lists it with the next rotation", async () => {
    const set = await harness.runJson([
      "policy",
      "set",
      "--all-agents",
      "--max-age",
      "1d",
      "--window",
      "mon-fri 02:00-04:00 Europe/Berlin",
    ]);
    expect(set.code).toBe(0);
    expect(policyDocument.parse(set.json).policies.map((entry) => entry.principal)).toEqual([
      { kind: "agent", agent_id: 1 },
      { kind: "agent", agent_id: 2 },
    ]);
    const list = await harness.run(["policy", "list"]);
    expect(list.stdout).toContain("max-age 1d, window Mon-Fri 02:00-04:00 Europe/Berlin");
    const status = await harness.runJson(["status", "--agent", "1"]);
    expect(status.json).toMatchObject({
      schedule: {
        policy: expect.stringContaining("window Mon-Fri 02:00-04:00 Europe/Berlin"),
        // Keys stored Monday noon: due Tuesday noon, rotated in Wednesday's window (01:00Z).
        due_at: "2026-01-06T12:00:00.000Z",
        next_rotation_at: "2026-01-07T01:00:00.000Z",
        in_window: false,
        due: false,
        overdue: false,
      },
    });
  });

  it("rotates nothing before the time, then exactly the due keys, once", async () => {
    const early = await harness.runJson(["rotate", "--due"]);
    expect(early.code).toBe(0);
    expect(dueDocument.parse(early.json)).toMatchObject({ due: true, dry_run: false });
    expect(agentRotations()).toBe(0);

    clock.set(Date.parse("2026-01-07T01:05:00Z"));
    const plan = await harness.runJson(["rotate", "--due", "--dry-run"]);
    expect(plan.code).toBe(0);
    expect(dueDocument.parse(plan.json)).toMatchObject({
      dry_run: true,
      results: [
        { label: "agent 1", result: "would_rotate" },
        { label: "agent 2", result: "would_rotate" },
      ],
    });
    expect(agentRotations()).toBe(0);

    const run = await harness.runJson(["rotate", "--due"]);
    expect(run.code).toBe(0);
    expect(dueDocument.parse(run.json)).toMatchObject({
      results: [
        { label: "agent 1", result: "rotated", next_rotation_at: "2026-01-08T01:00:00.000Z" },
        { label: "agent 2", result: "rotated" },
      ],
    });
    expect(run.stdout).not.toMatch(RAW_SECRET);
    expect(agentRotations()).toBe(2);

    // The same cron line a minute later: nothing is due again.
    clock.advance(60_000);
    const again = await harness.runJson(["rotate", "--due"]);
    expect(again.code).toBe(0);
    expect(agentRotations()).toBe(2);
  });

  it("a missed weekend turns the keys overdue: exit 12, and doctor fails until they rotate", async () => {
    // Thursday's and Friday's runs never happened (host down); it is Saturday 12:00.
    clock.set(Date.parse("2026-01-10T12:00:00Z"));
    const weekend = await harness.run(["rotate", "--due"]);
    expect(weekend.code).toBe(12);
    expect(weekend.stdout).toContain("not due (OVERDUE)");
    const doctor = await harness.runJson(["doctor"]);
    expect(doctor.code).toBe(11);
    expect(doctorDocument.parse(doctor.json)).toMatchObject({
      ok: false,
      overdue: [{ label: "agent 1" }, { label: "agent 2" }],
    });
    // Monday's window: rotated, and all is well again.
    clock.set(Date.parse("2026-01-12T01:30:00Z"));
    const monday = await harness.run(["rotate", "--due"]);
    expect(monday.code).toBe(0);
    expect(agentRotations()).toBe(4);
    expect((await harness.run(["doctor"])).code).toBe(0);
  });

  it("a due rotation whose key a delivery target could not take is listed and fails the run", async () => {
    const created = await harness.runJson(["agents", "create", "gamma"]);
    const gamma = String((created.json as { agent_id: number }).agent_id);
    const down = join(harness.dir, "consumer-down");
    const script = `process.stdin.resume();process.stdin.on("end",()=>process.exit(require("fs").existsSync(${JSON.stringify(down)})?3:0))`;
    const added = await harness.run([
      "deliver",
      "add",
      "--agent",
      gamma,
      "exec",
      "--",
      process.execPath,
      "-e",
      script,
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect((await harness.run(["policy", "set", "--agent", gamma, "--max-age", "1d"])).code).toBe(
      0,
    );
    await writeFile(down, "");
    clock.advance(2 * 86_400_000);
    const run = await harness.runJson(["rotate", "--due"]);
    expect(run.code).not.toBe(0);
    const outcome = dueDocument
      .parse(run.json)
      .results.find((result) => result.principal.agent_id === Number(gamma));
    expect(outcome).toMatchObject({
      result: "rotated",
      deliveries: [expect.objectContaining({ target: "exec-1", status: "failed" })],
    });
    await rm(down);
    const text = await harness.run(["deliver", "retry", "--agent", gamma]);
    expect(text.code, text.stderr).toBe(0);
  });

  it("--due does not mix with --force or --agent", async () => {
    expect((await harness.run(["rotate", "--due", "--force"])).code).toBe(2);
    expect((await harness.run(["rotate", "--due", "--agent", "1"])).code).toBe(2);
  });
});

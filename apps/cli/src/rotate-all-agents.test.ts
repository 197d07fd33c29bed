import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  startCliHarness,
} from "./cli-harness.test-helper.js";
import { allAgentsDocument, allAgentsPlanDocument } from "./json-schemas.test-helper.js";

// The faucet fails the 2nd agent rotation of the first run (HTTP 503, nothing rotated), as an
// outage in the middle of `--all-agents` would. The re-run must rotate only what is left.
describe("rekey rotate --all-agents, interrupted and resumed", () => {
  let harness: CliHarness;
  const agentRotations = () => harness.sandbox.stats().rotationsByAction.regenerate_agent_key ?? 0;

  beforeAll(async () => {
    harness = await startCliHarness({
      faults: [{ action: "regenerate_agent_key", nth: 2, kind: "status_503" }],
    });
    await registerOperator(harness);
    for (const name of ["alpha", "beta", "gamma"]) {
      const created = await harness.run(["agents", "create", name]);
      expect(created.code).toBe(0);
    }
  });
  afterAll(() => harness.close());

  it("the plan lists every agent and rotates nothing", async () => {
    const result = await harness.runJson(["rotate", "--all-agents", "--dry-run"]);
    expect(result.code).toBe(0);
    const plan = allAgentsPlanDocument.parse(result.json);
    expect(plan.agents.map((entry) => entry.action)).toEqual(["rotate", "rotate", "rotate"]);
    expect(agentRotations()).toBe(0);
  });

  it("without a terminal it needs --yes", async () => {
    const result = await harness.run(["rotate", "--all-agents"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--yes");
    expect(agentRotations()).toBe(0);
  });

  it("reports the failed agent in the summary and exits with its error's code", async () => {
    const result = await harness.runJson(["rotate", "--all-agents", "--yes"]);
    const document = allAgentsDocument.parse(result.json);
    const byResult = (kind: string) => document.results.filter((entry) => entry.result === kind);
    expect(byResult("rotated")).toHaveLength(2);
    // Each outcome names its principal the one way the vocabulary does.
    for (const entry of document.results) {
      expect(entry.principal).toEqual({ kind: "agent", agent_id: entry.agent_id });
      expect(entry.label).toBe(`agent ${entry.agent_id}`);
    }
    expect(byResult("failed")).toHaveLength(1);
    expect(byResult("failed")[0]?.error?.code).toMatch(/^UPSTREAM_/);
    expect(result.code).toBe(6);
    expect(agentRotations()).toBe(2);
    expect(result.stdout).not.toMatch(RAW_SECRET);
  });

  it("the re-run skips the agents already rotated and rotates only the failed one", async () => {
    const result = await harness.run(["rotate", "--all-agents", "--yes"]);
    expect(result.code).toBe(0);
    expect(agentRotations()).toBe(3);
    // --yes asks nothing, so it prints no plan: the summary says what was skipped.
    expect(result.stderr).not.toContain("Plan");
    expect(result.stdout.match(/^\d+\s+\w+\s+already rotated\s/gm)).toHaveLength(2);
    expect(result.stdout.match(/^\d+\s+\w+\s+rotated\s+fp:/gm)).toHaveLength(1);
    expect(result.stdout).toMatch(/agent\s+name\s+result\s+new fingerprint\s+cooldown until/);
  });

  it("a third run rotates nothing; --force rotates every agent again", async () => {
    const idle = await harness.runJson(["rotate", "--all-agents", "--yes"]);
    expect(idle.code).toBe(0);
    const document = allAgentsDocument.parse(idle.json);
    expect(document.results.every((entry) => entry.result === "already_rotated")).toBe(true);
    expect(agentRotations()).toBe(3);

    const forced = await harness.runJson([
      "rotate",
      "--all-agents",
      "--yes",
      "--force",
      "--reveal",
    ]);
    expect(forced.code).toBe(0);
    const results = allAgentsDocument.parse(forced.json).results;
    expect(results.map((entry) => entry.result)).toEqual(["rotated", "rotated", "rotated"]);
    expect(results.every((entry) => entry.api_key?.startsWith("lf_"))).toBe(true);
    expect(agentRotations()).toBe(6);
  });

  it("draws a progress bar on a terminal's stderr, never with --json", async () => {
    const bar = () => {
      const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
      let drawn = "";
      stream.setEncoding("utf8").on("data", (text: string) => {
        drawn += text;
      });
      return { stream, drawn: () => drawn };
    };
    const human = bar();
    const result = await harness.run(["rotate", "--all-agents", "--yes", "--force"], {
      progressStream: human.stream,
    });
    expect(result.code).toBe(0);
    expect(human.drawn()).toContain("rotating agents");
    expect(human.drawn()).toContain("3/3");

    const json = bar();
    await harness.run(["rotate", "--all-agents", "--yes", "--force", "--json"], {
      progressStream: json.stream,
    });
    expect(json.drawn()).toBe("");
  });
});

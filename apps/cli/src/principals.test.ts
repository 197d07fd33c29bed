import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createFaucetClient } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliHarness, registerOperator, startCliHarness } from "./cli-harness.test-helper.js";
import { exitCodeFor } from "./exit-codes.js";
import {
  doctorDocument,
  errorDocument,
  forgetDocument,
  historyDocument,
  profilesListDocument,
  profilesRemoveDocument,
  recordOf,
} from "./json-schemas.test-helper.js";

// The three ways a key was dropped or left stale by keeping keys per profile (issue "One
// principal, one record"), each ending with every stored key alive upstream.

let harness: CliHarness;
beforeEach(async () => {
  harness = await startCliHarness();
});
afterEach(() => harness.close());

async function ok(args: string[], options: Parameters<CliHarness["run"]>[1] = {}) {
  const result = await harness.runJson(args, options);
  if (result.code !== 0)
    throw new Error(`${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.json as Record<string, unknown>;
}

async function refused(args: string[], options: Parameters<CliHarness["run"]>[1] = {}) {
  const result = await harness.runJson(args, options);
  expect(result.code).not.toBe(0);
  return { code: result.code, error: errorDocument.parse(JSON.parse(result.stderr)).error };
}

/** True when the faucet accepts `key`. */
async function alive(key: string): Promise<boolean> {
  return createFaucetClient({ baseUrl: harness.sandbox.url })
    .whoami(key)
    .then(
      () => true,
      () => false,
    );
}

async function revealAgentKey(agentId: number, profile = "default"): Promise<string> {
  const rotated = await ok([
    "--profile",
    profile,
    "rotate",
    "--agent",
    String(agentId),
    "--yes",
    "--force",
    "--reveal",
  ]);
  return rotated.api_key as string;
}

describe("login and import never drop another principal's key", () => {
  it("a key of another operator is stored beside the profile's, which keeps its own until --replace", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    // The profile's operator key exists only in the store (rotated without --reveal).
    await ok(["rotate", "--yes"]);
    const before = await ok(["status"]);
    const other = await createFaucetClient({ baseUrl: harness.sandbox.url }).register({});

    const login = await refused(["login"], { stdin: other.apiKey });
    expect(login.code).toBe(exitCodeFor("CONFIG_INVALID"));
    expect(login.error.message).toContain(`operator:${other.operatorId}`);
    expect(login.error.hint).toContain("--replace");
    // Nothing replaced: the profile still acts as its operator, whose key works.
    const after = await ok(["status"]);
    expect(after.fingerprint).toBe(before.fingerprint);
    expect((await ok(["agents"])).agents).toHaveLength(1);

    // --replace repoints the profile; the first operator's record and key stay.
    await ok(["login", "--replace"], { stdin: other.apiKey });
    const shown = await ok(["profiles", "show"]);
    expect(shown.profile).toMatchObject({ operator_id: other.operatorId });
    const doctor = doctorDocument.parse(await ok(["--as", "operator:1", "doctor"]));
    expect(doctor.keys.filter((check) => check.operator_id === 1)).toEqual([
      expect.objectContaining({ fingerprint: before.fingerprint, alive: true, current: true }),
    ]);
    // The old operator's agents are no longer this profile's: rotating one is refused by the
    // faucet as another operator's, and acting as the first operator still works.
    expect((await ok(["--as", "operator:1", "agents"])).agents).toHaveLength(1);
    const history = historyDocument.parse(await ok(["history"]));
    expect(history.entries.map((entry) => `${entry.action} ${recordOf(entry)}`)).toContain(
      `repoint operator:${other.operatorId}`,
    );
  });

  it("import files an agent of another operator under its real operator", async () => {
    await registerOperator(harness);
    const faucet = createFaucetClient({ baseUrl: harness.sandbox.url });
    const other = await faucet.register({});
    const stranger = await faucet.createAgent(other.apiKey, { name: "stranger" });
    const file = join(harness.dir, "lw-credentials.json");
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        active: "operator",
        agent: {
          api_key: stranger.apiKey,
          id: stranger.agentId,
          saved_at: new Date().toISOString(),
        },
      }),
      { mode: 0o600 },
    );
    const imported = await ok(["import", "lightning-wallet", "--file", file]);
    expect(imported.results).toEqual([
      expect.objectContaining({
        entry: "agent",
        result: "imported",
        principal: { kind: "agent", agent_id: stranger.agentId },
        in_profile: false,
      }),
    ]);
    // It is not one of this profile's agents, and it acts as it only when asked.
    const mine = await ok(["profiles", "show"]);
    expect(mine.profile).toMatchObject({
      principals: [{ principal: { kind: "operator" }, label: "operator", operator_id: 1 }],
    });
    const asStranger = await ok(["--as", `agent:${stranger.agentId}`, "status"]);
    expect(asStranger).toMatchObject({ label: `agent ${stranger.agentId}`, has_key: true });
  });

  it("refuses a stale key for a principal the store holds, naming both fingerprints", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    const stale = await revealAgentKey(1);
    await ok(["rotate", "--agent", "1", "--yes", "--force"]);
    const current = (await ok(["status", "--agent", "1"])).fingerprint as string;
    // The dead key is refused, naming the rotation that killed it and the key to use instead.
    const result = await refused(["--profile", "ag", "login"], { stdin: stale });
    expect(result.error.code).toBe("UNAUTHORIZED");
    expect(result.error.message).toContain("agent 1");
    expect(result.error.message).toContain(current);
    expect((await ok(["status", "--agent", "1"])).fingerprint).toBe(current);
  });
});

describe("two profiles on one principal see one record", () => {
  it("an operator's rotation of an agent reaches the agent's own profile: key, cooldown, history", async () => {
    // The reproduction, as typed.
    await ok(["--profile", "op", "register", "--recovery-code-file", join(harness.dir, "r.txt")]);
    await ok(["--profile", "op", "agents", "create", "w"]);
    const agentKey = await revealAgentKey(1, "op");
    await ok(["--profile", "ag", "login"], { stdin: agentKey });
    await ok(["--profile", "op", "rotate", "--agent", "1", "--yes", "--force"]);

    const asAgent = await ok(["--profile", "ag", "status"]);
    const fromOperator = await ok(["--profile", "op", "status", "--agent", "1"]);
    expect(asAgent.fingerprint).toBe(fromOperator.fingerprint);
    expect(asAgent.identity).toMatchObject({ principal: { kind: "agent", agent_id: 1 }, id: 1 });
    expect(asAgent.cooldown_remaining_seconds as number).toBeGreaterThan(25 * 60);
    expect(asAgent.last_rotation).toMatchObject({ new_fingerprint: asAgent.fingerprint });
    // The cooldown guard sees it from the agent's side too.
    const again = await refused(["--profile", "ag", "rotate", "--yes"]);
    expect(again.error.code).toBe("COOLDOWN_ACTIVE");
    expect(await alive(agentKey)).toBe(false);
  });

  it("runs as an agent created with `agents create`, without revealing or copying its key", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    const status = await ok(["--as", "agent:1", "status"]);
    expect(status).toMatchObject({ label: "agent 1", has_key: true });
    const rotated = await ok(["--as", "agent:1", "rotate", "--yes"]);
    expect(rotated).toMatchObject({ label: "agent 1", verified: true });
    // The operator's view of the agent shows the agent's own rotation.
    const fromOperator = await ok(["status", "--agent", "1"]);
    expect(fromOperator.fingerprint).toBe(rotated.fingerprint);
    const env = await ok(["status"], { env: { REKEY_AS: "agent:1" } });
    expect(env.fingerprint).toBe(rotated.fingerprint);
  });
});

describe("profiles and forget", () => {
  it("lists, switches, renames and removes profiles; removing one keeps its keys", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    await ok(["--profile", "ag", "login"], { stdin: await revealAgentKey(1) });
    const listed = profilesListDocument.parse(await ok(["profiles"]));
    expect(listed.profiles).toEqual([
      expect.objectContaining({
        name: "ag",
        acts_as: { principal: { kind: "agent", agent_id: 1 }, label: "agent 1" },
      }),
      expect.objectContaining({ name: "default", operator_id: 1, current: false }),
    ]);
    await ok(["profiles", "use", "ag"]);
    expect((await ok(["status"])).label).toBe("agent 1");
    await ok(["profiles", "rename", "ag", "worker"]);
    expect((await ok(["status"])).profile).toBe("worker");
    const removed = profilesRemoveDocument.parse(await ok(["profiles", "remove", "worker"]));
    expect(removed.kept_records).toEqual([
      { principal: { kind: "agent", agent_id: 1 }, label: "agent 1" },
    ]);
    expect((await ok(["status", "--agent", "1"])).has_key).toBe(true);
    const missing = await refused(["--profile", "worker", "status"]);
    expect(missing.code).toBe(exitCodeFor("NOT_FOUND"));
  });

  it("forget asks before dropping a key the faucet accepts, refuses one a profile uses, and audits it", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    const inUse = await refused(["forget", "operator:1", "--yes"]);
    expect(inUse.error.message).toContain('"default"');
    const unconfirmed = await refused(["forget", "agent:1"]);
    expect(unconfirmed.error.hint).toContain("--yes");
    expect((await ok(["status", "--agent", "1"])).has_key).toBe(true);
    const fingerprint = (await ok(["status", "--agent", "1"])).fingerprint;
    const forgot = forgetDocument.parse(
      await ok(["forget", "agent:1"], {
        terminal: { stdin: true, stderr: true },
        confirmations: [true],
      }),
    );
    expect(forgot).toMatchObject({
      principal: { kind: "agent", agent_id: 1 },
      fingerprint,
      was_alive: true,
    });
    const history = (await ok(["history"])) as { entries: Record<string, unknown>[] };
    expect(history.entries.at(-1)).toMatchObject({
      action: "forget",
      principal: { kind: "agent", agent_id: 1 },
      old_fingerprint: fingerprint,
    });
    expect((await refused(["status", "--agent", "1"])).error.code).toBe("NOT_FOUND");
  });

  it("status of an agent the profile holds no record of exits with the not-found code", async () => {
    await registerOperator(harness);
    const result = await refused(["status", "--agent", "99"]);
    expect(result.code).toBe(exitCodeFor("NOT_FOUND"));
  });
});

describe("what a review found", () => {
  it("an operator key into a profile acting as another operator's agent is stored beside it, not taken as its operator", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    await ok(["--profile", "ag", "login"], { stdin: await revealAgentKey(1) });
    const other = await createFaucetClient({ baseUrl: harness.sandbox.url }).register({});
    const refusedLogin = await refused(["--profile", "ag", "login"], { stdin: other.apiKey });
    expect(refusedLogin.error.code).toBe("CONFIG_INVALID");
    const shown = await ok(["profiles", "show", "ag"]);
    expect(shown.profile).toMatchObject({ acts_as: { principal: { kind: "agent", agent_id: 1 } } });
    expect((shown.profile as { operator?: string }).operator).not.toBe(
      `operator:${other.operatorId}`,
    );
    // Its own operator's key is welcome: the agent's operator becomes the profile's.
    const fromOwner = await harness.runJson(["--profile", "ag", "status"]);
    expect(fromOwner.code).toBe(0);
  });

  it("login --replace with another operator's agent key makes the profile act as that agent", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    await ok(["--profile", "ag", "login"], { stdin: await revealAgentKey(1) });
    const faucet = createFaucetClient({ baseUrl: harness.sandbox.url });
    const other = await faucet.register({});
    const stranger = await faucet.createAgent(other.apiKey, { name: "stranger" });
    await ok(["--profile", "ag", "login", "--replace"], { stdin: stranger.apiKey });
    expect((await ok(["--profile", "ag", "status"])).label).toBe(`agent ${stranger.agentId}`);
    // The first agent's record stays.
    expect((await ok(["status", "--agent", "1"])).has_key).toBe(true);
  });

  it("forget --yes removes a record whose faucet cannot be reached", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    await harness.sandbox.close();
    const forgot = forgetDocument.parse(await ok(["forget", "agent:1", "--yes"]));
    expect(forgot).toMatchObject({ principal: { kind: "agent", agent_id: 1 } });
  });

  it("import reports another account's key as stored beside the profile, not as failed", async () => {
    await registerOperator(harness);
    const other = await createFaucetClient({ baseUrl: harness.sandbox.url }).register({});
    const file = join(harness.dir, "lw-other.json");
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        active: "operator",
        operator: {
          api_key: other.apiKey,
          id: other.operatorId,
          saved_at: new Date().toISOString(),
        },
      }),
      { mode: 0o600 },
    );
    const imported = await ok(["import", "lightning-wallet", "--file", file]);
    expect(imported.results).toEqual([
      expect.objectContaining({
        result: "imported",
        principal: { kind: "operator" },
        operator_id: other.operatorId,
        in_profile: false,
      }),
    ]);
    expect((await ok(["profiles", "show"])).profile).toMatchObject({ operator_id: 1 });
  });
});

describe("--as a principal the store holds no key for", () => {
  it("every command says so plainly (NOT_FOUND, exit 4), instead of answering as the operator or as a profile without a key", async () => {
    await registerOperator(harness);
    await ok(["agents", "create", "w"]);
    const rotationsBefore = harness.sandbox.stats().rotations;
    // `status` said "key: none (run rekey register…)" and exited 0; `agents` and `status
    // --agent 1` answered as the operator; `rotate` said the profile holds no key.
    for (const command of [
      ["status"],
      ["status", "--agent", "1"],
      ["rotate", "--yes"],
      ["rotate", "--agent", "1", "--yes"],
      ["agents"],
      ["agents", "create", "v"],
      ["withdraw", "--amount", "1"],
      ["doctor"],
      ["run", "--", "true"],
      ["policy", "list"],
      ["rotate", "--due", "--dry-run"],
    ]) {
      const result = await refused(["--as", "agent:9", ...command]);
      expect(result.code, command.join(" ")).toBe(exitCodeFor("NOT_FOUND"));
      expect(result.error.code, command.join(" ")).toBe("NOT_FOUND");
      expect(result.error.message, command.join(" ")).toBe(
        `The store holds no key for agent 9 on ${harness.sandbox.url}`,
      );
      expect(result.error.hint, command.join(" ")).toMatch(/rekey agents/);
      expect(result.error.hint, command.join(" ")).toMatch(/rekey login/);
    }
    // REKEY_AS is the same setting; an operator id the store does not hold too.
    const fromEnv = await refused(["status"], { env: { REKEY_AS: "agent:9" } });
    expect(fromEnv.error.message).toContain("holds no key for agent 9");
    const operator = await refused(["--as", "operator:77", "status"]);
    expect(operator.code).toBe(exitCodeFor("NOT_FOUND"));
    expect(operator.error.message).toContain("holds no key for operator 77");
    expect(harness.sandbox.stats().rotations).toBe(rotationsBefore);
    expect((await ok(["agents"])).agents).toHaveLength(1);
  });
});

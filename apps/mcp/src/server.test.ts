import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fingerprint } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { errorOf, seen, startWorld, textOf, type World } from "./world.test-helper.js";

const run = promisify(execFile);
let world: World;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

describe("tools/list", () => {
  it("shows the four tools with input and output schemas and annotations", async () => {
    const session = await world.connect();
    const { tools } = await session.client.listTools();
    const byName = Object.fromEntries(tools.map((tool) => [tool.name, tool]));
    expect(Object.keys(byName).sort()).toEqual([
      "get_key_status",
      "list_agents",
      "rotate_api_key",
      "whoami",
    ]);

    const rotate = byName.rotate_api_key;
    expect(rotate?.annotations).toMatchObject({
      destructiveHint: true,
      idempotentHint: false,
      openWorldHint: true,
      readOnlyHint: false,
    });
    expect(rotate?.description).toMatch(/invalidating the old one immediately/);
    expect(rotate?.description).toMatch(/60-min withdrawal cooldown/);
    expect(rotate?.description).toMatch(/30-min cooldown/);
    expect(rotate?.inputSchema.required ?? []).toEqual([]);
    expect(rotate?.inputSchema.properties?.agent_id).toMatchObject({
      type: "integer",
      exclusiveMinimum: 0,
      maximum: 2 ** 31 - 1,
      description: expect.stringMatching(/operators only/),
    });
    expect(Object.keys(rotate?.inputSchema.properties ?? {})).toEqual(["agent_id"]);
    expect(rotate?.outputSchema?.required).toEqual(
      expect.arrayContaining([
        "principal",
        "fingerprint",
        "cooldown_until",
        "cooldown_minutes",
        "verified",
        "request_id",
        "message",
      ]),
    );
    expect(rotate?.outputSchema?.required).not.toContain("api_key");

    for (const name of ["get_key_status", "list_agents", "whoami"]) {
      expect(byName[name]?.annotations?.readOnlyHint, name).toBe(true);
      expect(byName[name]?.outputSchema?.type, name).toBe("object");
    }
    expect(byName.get_key_status?.inputSchema.properties?.agent_id).toBeDefined();
  });

  it("gives every output field its own description, nested fields included", async () => {
    const session = await world.connect();
    const { tools } = await session.client.listTools();
    interface Schema {
      description?: string;
      properties?: Record<string, Schema>;
      items?: Schema;
    }
    /** Checks each field of an object schema (and of objects inside it), one level's apart. */
    const check = (where: string, schema: Schema | undefined) => {
      const properties = schema?.properties ?? schema?.items?.properties ?? {};
      const descriptions = Object.entries(properties).map(([field, child]) => {
        expect(child.description, `${where}.${field}`).toEqual(expect.any(String));
        check(`${where}.${field}`, child);
        return child.description;
      });
      expect(new Set(descriptions).size, where).toBe(descriptions.length);
    };
    for (const tool of tools) check(tool.name, tool.outputSchema as Schema);
  });

  it("does not advertise tools.listChanged: the four tools never change", async () => {
    const session = await world.connect();
    expect(session.client.getServerCapabilities()?.tools?.listChanged).not.toBe(true);
  });

  it("answers a call to an unknown tool with a JSON-RPC error, as the spec says", async () => {
    const session = await world.connect();
    await expect(
      session.client.callTool({ name: "no_such_tool", arguments: {} }),
    ).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining("Unknown tool: no_such_tool"),
    });
    // The known tools still answer through the same handler.
    expect((await session.call("whoami")).isError).toBeFalsy();
  });
});

describe("rotate_api_key", () => {
  it("rotates the operator's own key: stored, session switched, no raw key in the result", async () => {
    const session = await world.connect();
    const before = await session.call("whoami");
    const oldFingerprint = (before.structuredContent as { fingerprint: string }).fingerprint;

    const result = await session.call("rotate_api_key");
    expect(result.isError).toBeFalsy();
    const rotated = result.structuredContent as Record<string, unknown>;
    const storedKey = await world.storedKey("default");
    expect(rotated).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: fingerprint(storedKey ?? ""),
      old_fingerprint: oldFingerprint,
      cooldown_minutes: 60,
      verified: true,
      session_switched: true,
    });
    expect(rotated.api_key).toBeUndefined();
    expect(Date.parse(String(rotated.cooldown_until)) - world.clock.now()).toBeGreaterThan(
      59 * 60_000,
    );
    expect(textOf(result)).toMatch(/this session now uses it/);

    const after = await session.call("whoami");
    expect(after.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: rotated.fingerprint,
    });
  });

  it("an operator rotating an agent stores the key under the agent and stays the operator", async () => {
    const created = await world.setup.createAgent({ name: "worker" });
    const agentKeyBefore = await world.storedKey("default", created.agentId);
    const operatorKeyBefore = await world.storedKey("default");
    const session = await world.connect();

    const result = await session.call("rotate_api_key", { agent_id: created.agentId });
    expect(result.isError).toBeFalsy();
    const agentKeyAfter = await world.storedKey("default", created.agentId);
    expect(agentKeyAfter).not.toBe(agentKeyBefore);
    expect(result.structuredContent).toMatchObject({
      principal: { kind: "agent", agent_id: created.agentId },
      fingerprint: fingerprint(agentKeyAfter ?? ""),
      cooldown_minutes: 30,
      session_switched: false,
    });
    expect(await world.storedKey("default")).toBe(operatorKeyBefore);

    const whoami = await session.call("whoami");
    expect(whoami.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: fingerprint(operatorKeyBefore ?? ""),
    });

    // The agent's new key works: an agent session on it answers as that agent.
    const agentProfile = world.rekey("agent-session");
    await agentProfile.login(agentKeyAfter ?? "");
    const agentSession = await world.connect({ profile: "agent-session" });
    expect((await agentSession.call("whoami")).structuredContent).toMatchObject({
      principal: { kind: "agent", agent_id: created.agentId },
      id: created.agentId,
    });
  });

  it("an agent rotates its own key, and is refused another agent's (FORBIDDEN)", async () => {
    const created = await world.setup.createAgent({ name: "self-rotating" });
    await world
      .rekey("agent-session")
      .login((await world.storedKey("default", created.agentId)) ?? "");
    const session = await world.connect({ profile: "agent-session" });
    const rotationsBefore = world.sandbox.stats().rotations;

    const refused = await session.call("rotate_api_key", { agent_id: created.agentId + 1 });
    expect(refused.isError).toBe(true);
    expect(errorOf(refused).code).toBe("FORBIDDEN");
    expect(textOf(refused)).toMatch(/^FORBIDDEN: /);
    expect(world.sandbox.stats().rotations).toBe(rotationsBefore);

    const result = await session.call("rotate_api_key");
    expect(result.isError).toBeFalsy();
    const storedKey = await world.storedKey("agent-session", created.agentId);
    expect(result.structuredContent).toMatchObject({
      principal: { kind: "agent", agent_id: created.agentId },
      fingerprint: fingerprint(storedKey ?? ""),
      cooldown_minutes: 30,
      session_switched: true,
    });
    expect((await session.call("whoami")).structuredContent).toMatchObject({
      principal: { kind: "agent", agent_id: created.agentId },
      id: created.agentId,
      fingerprint: fingerprint(storedKey ?? ""),
    });

    const listed = await session.call("list_agents");
    expect(errorOf(listed).code).toBe("FORBIDDEN");
  });

  it("list_agents refused for an agent session says why, without advice about agent_id", async () => {
    const created = await world.setup.createAgent({ name: "curious" });
    await world
      .rekey("agent-lister")
      .login((await world.storedKey("default", created.agentId)) ?? "");
    const session = await world.connect({ profile: "agent-lister" });
    const refused = errorOf(await session.call("list_agents"));
    expect(refused.code).toBe("FORBIDDEN");
    // list_agents takes no agent_id: advice to omit it would send the model in a circle.
    expect(refused.hint).not.toMatch(/agent_id/);
    expect(refused.hint).toMatch(/operator session/);
    expect(refused.principal).toEqual({ kind: "agent", agent_id: created.agentId });
  });

  it("an empty profile does not send the model to list_agents, which fails the same way", async () => {
    const session = await world.connect({ profile: "empty" });
    for (const [tool, args] of [
      ["list_agents", {}],
      ["get_key_status", {}],
      ["rotate_api_key", {}],
      ["whoami", {}],
    ] as const) {
      const refused = errorOf(await session.call(tool, args));
      expect(refused.code, tool).toBe("NOT_FOUND");
      expect(refused.hint, tool).not.toMatch(/list_agents/);
      expect(refused.hint, tool).toMatch(/holds no key/);
      // The message says what the hint does (no key yet), not only that a profile is missing.
      expect(refused.message, tool).toMatch(/no key/i);
    }
  });

  it("refuses a second rotation inside the cooldown with the time remaining", async () => {
    const session = await world.connect();
    expect((await session.call("rotate_api_key")).isError).toBeFalsy();
    const keyAfterFirst = await world.storedKey("default");
    world.clock.advance(20 * 60_000);

    const refused = await session.call("rotate_api_key");
    expect(refused.isError).toBe(true);
    const error = errorOf(refused);
    expect(error.code).toBe("COOLDOWN_ACTIVE");
    expect(error.retry_after_seconds).toBe(40 * 60);
    expect(typeof error.cooldown_until).toBe("string");
    expect(textOf(refused)).toMatch(/another 40 minutes/);
    expect(await world.storedKey("default")).toBe(keyAfterFirst);

    const status = await session.call("get_key_status");
    expect(status.structuredContent).toMatchObject({ cooldown_remaining_seconds: 40 * 60 });

    world.clock.advance(41 * 60_000);
    expect((await session.call("rotate_api_key")).isError).toBeFalsy();
  });

  it.each([
    ["negative", -1],
    ["a string", "abc"],
    ["2^31", 2 ** 31],
    ["a fraction", 1.5],
    ["null", null],
  ])("rejects agent_id %s with a clear error and rotates nothing", async (_, agentId) => {
    const session = await world.connect();
    const keyBefore = await world.storedKey("default");
    const rotationsBefore = world.sandbox.stats().rotations;

    const result = await session.call("rotate_api_key", { agent_id: agentId });
    expect(result.isError).toBe(true);
    expect(errorOf(result).code).toBe("INVALID_INPUT");
    expect(textOf(result)).toMatch(/^INVALID_INPUT: Invalid agent id/);
    expect(errorOf(result).hint).toMatch(/positive whole number/);
    expect(errorOf(await session.call("get_key_status", { agent_id: agentId })).code).toBe(
      "INVALID_INPUT",
    );
    expect(world.sandbox.stats().rotations).toBe(rotationsBefore);
    expect(await world.storedKey("default")).toBe(keyBefore);
  });

  it("uses a key rotated by another process without a restart", async () => {
    const session = await world.connect();
    const before = (await session.call("whoami")).structuredContent as { fingerprint: string };

    // A separate process, with its own store handle on the same directory.
    const script = `
      import { createRekey, openCredentialStore } from "@rekey/core";
      const store = await openCredentialStore({ spec: process.env.DIR, env: {} });
      const rekey = createRekey({ store, surface: "cli", env: {} });
      const result = await rekey.rotateKey();
      await rekey.close(); await store.close();
      process.stdout.write(result.newFingerprint);
    `;
    const cwd = fileURLToPath(new URL("..", import.meta.url));
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
      cwd,
      env: { ...process.env, DIR: world.dir },
    });
    await world.rememberSecrets();
    expect(stdout).toMatch(/^fp:/);
    expect(stdout).not.toBe(before.fingerprint);

    const after = await session.call("whoami");
    expect(after.isError).toBeFalsy();
    expect(after.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      fingerprint: stdout,
    });
  });

  it("with reveal on, returns api_key, and it is the stored key", async () => {
    const session = await world.connect({ revealKeys: true });
    const result = await session.call("rotate_api_key");
    const rotated = result.structuredContent as { api_key?: string; fingerprint: string };
    expect(rotated.api_key).toBeDefined();
    expect(rotated.api_key).toBe(await world.storedKey("default"));
    expect(fingerprint(rotated.api_key ?? "")).toBe(rotated.fingerprint);
  });
});

describe("faucet faults", () => {
  it("a rotation whose reply is lost is still stored and used", async () => {
    await world.close();
    world = await startWorld({
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
    });
    const session = await world.connect();
    const result = await session.call("rotate_api_key");
    expect(result.isError).toBeFalsy();
    expect(world.sandbox.stats().rotations).toBe(1);
    const storedKey = await world.storedKey("default");
    expect(result.structuredContent).toMatchObject({
      fingerprint: fingerprint(storedKey ?? ""),
      verified: true,
    });
    expect((await session.call("whoami")).structuredContent).toMatchObject({
      fingerprint: fingerprint(storedKey ?? ""),
    });
  });

  it("a faucet outage is an isError result with a hint, and the old key keeps working", async () => {
    await world.close();
    world = await startWorld({
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "status_503" }],
    });
    const session = await world.connect();
    const keyBefore = await world.storedKey("default");
    const result = await session.call("rotate_api_key");
    expect(errorOf(result).code).toBe("UPSTREAM_UNAVAILABLE");
    expect(errorOf(result).hint).toMatch(/get_key_status/);
    expect(world.sandbox.stats().rotations).toBe(0);
    expect(await world.storedKey("default")).toBe(keyBefore);
    expect((await session.call("whoami")).structuredContent).toMatchObject({
      fingerprint: fingerprint(keyBefore ?? ""),
    });
  });
});

describe("read-only tools", () => {
  it("get_key_status shows fingerprint, age, last rotation and cooldown of self and of an agent", async () => {
    const created = await world.setup.createAgent({ name: "watched" });
    const session = await world.connect();
    world.clock.advance(90_000);

    const fresh = await session.call("get_key_status");
    expect(fresh.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      profile: "default",
      has_key: true,
      fingerprint: fingerprint((await world.storedKey("default")) ?? ""),
      key_age_seconds: 90,
      cooldown_remaining_seconds: 0,
    });
    expect((fresh.structuredContent as Record<string, unknown>).last_rotation).toBeUndefined();

    const rotated = (await session.call("rotate_api_key", { agent_id: created.agentId }))
      .structuredContent as {
      request_id: string;
      fingerprint: string;
    };
    const agentStatus = await session.call("get_key_status", { agent_id: created.agentId });
    expect(agentStatus.structuredContent).toMatchObject({
      principal: { kind: "agent", agent_id: created.agentId },
      fingerprint: rotated.fingerprint,
      cooldown_remaining_seconds: 30 * 60,
      last_rotation: {
        request_id: rotated.request_id,
        new_fingerprint: rotated.fingerprint,
        surface: "mcp",
      },
    });
    expect(textOf(agentStatus)).toMatch(/(30m 00s|29m 5\ds) left/);
    expect(
      (agentStatus.structuredContent as Record<string, unknown>).pending_rotation,
    ).toBeUndefined();
  });

  it("list_agents shows the operator's agents with fingerprints and cooldowns", async () => {
    const first = await world.setup.createAgent({ name: "alpha" });
    const second = await world.setup.createAgent({ name: "beta" });
    const session = await world.connect();
    await session.call("rotate_api_key", { agent_id: second.agentId });

    const result = await session.call("list_agents");
    const { agents } = result.structuredContent as { agents: Record<string, unknown>[] };
    expect(agents).toEqual([
      expect.objectContaining({
        agent_id: first.agentId,
        name: "alpha",
        has_key: true,
        fingerprint: first.fingerprint,
        cooldown_remaining_seconds: 0,
      }),
      expect.objectContaining({
        agent_id: second.agentId,
        name: "beta",
        has_key: true,
        fingerprint: fingerprint((await world.storedKey("default", second.agentId)) ?? ""),
        cooldown_remaining_seconds: 30 * 60,
      }),
    ]);
    expect(textOf(result)).toMatch(/^2 agents, 1 in a withdrawal cooldown/);
  });

  it("whoami names the operator and its fingerprint", async () => {
    const session = await world.connect();
    const result = await session.call("whoami");
    expect(result.structuredContent).toMatchObject({
      principal: { kind: "operator" },
      name: "test operator",
      profile: "default",
      fingerprint: fingerprint((await world.storedKey("default")) ?? ""),
    });
    expect(textOf(result)).toMatch(/This session acts as operator "test operator"/);
  });

  it("an argument it does not take (dry_run) is refused, and the key is not rotated", async () => {
    const session = await world.connect();
    const before = await world.storedKey("default");
    const result = await session.call("rotate_api_key", { dry_run: true });
    expect(errorOf(result)).toMatchObject({ code: "INVALID_INPUT" });
    expect(textOf(result)).toMatch(/dry_run/);
    expect(errorOf(result).hint).toMatch(/no dry run/);
    expect(errorOf(result).hint).toMatch(/get_key_status/);
    expect(await world.storedKey("default")).toBe(before);
    const { tools } = await session.client.listTools();
    const rotate = tools.find((tool) => tool.name === "rotate_api_key");
    expect(rotate?.inputSchema.additionalProperties).toBe(false);
  });

  it("get_key_status refuses an argument it does not take instead of answering for this session", async () => {
    // `agentId` (a model's camelCase slip) was dropped: the operator's status came back as if it
    // were the agent's.
    const session = await world.connect();
    const result = await session.call("get_key_status", { agentId: 7 });
    expect(errorOf(result)).toMatchObject({ code: "INVALID_INPUT" });
    expect(textOf(result)).toMatch(/agentId/);
    const { tools } = await session.client.listTools();
    const status = tools.find((tool) => tool.name === "get_key_status");
    expect(status?.inputSchema.additionalProperties).toBe(false);
  });

  it.each([
    // A model that wants one agent's details may pass agent_id to list_agents, or ask whoami
    // about an agent: both answered as if the argument had not been given.
    ["list_agents", { agent_id: 1 }, "agent_id"],
    ["whoami", { agent_id: 7 }, "agent_id"],
    ["whoami", { verbose: true }, "verbose"],
  ])("%s refuses an argument it does not take (%o)", async (tool, args, name) => {
    const session = await world.connect();
    const result = await session.call(tool, args);
    expect(errorOf(result)).toMatchObject({ code: "INVALID_INPUT" });
    expect(textOf(result)).toContain(`${tool} takes no arguments; not "${name}"`);
    expect(errorOf(result).hint).toMatch(/no arguments/);
  });

  it("advertises additionalProperties: false on every tool's input", async () => {
    const session = await world.connect();
    const { tools } = await session.client.listTools();
    expect(tools).toHaveLength(4);
    for (const tool of tools) {
      expect(tool.inputSchema.additionalProperties, tool.name).toBe(false);
    }
  });

  it("an unknown agent id is NOT_FOUND with a pointer to list_agents", async () => {
    const session = await world.connect();
    const result = await session.call("rotate_api_key", { agent_id: 999_999 });
    expect(errorOf(result)).toMatchObject({ code: "NOT_FOUND" });
    expect(errorOf(result).hint).toMatch(/list_agents/);
  });
});

describe("--as a principal the store holds no key for", () => {
  it("every tool says the store holds no key for it, instead of answering as the operator", async () => {
    const { agentId } = await world.setup.createAgent({ name: "worker" });
    const session = await world.connect({ actAs: `agent:${agentId + 1}` });
    for (const [tool, args] of [
      ["get_key_status", {}],
      ["get_key_status", { agent_id: agentId }],
      ["whoami", {}],
      ["list_agents", {}],
      ["rotate_api_key", {}],
      ["rotate_api_key", { agent_id: agentId }],
    ] as const) {
      const result = await session.call(tool, args);
      expect(errorOf(result), tool).toMatchObject({ code: "NOT_FOUND" });
      expect(textOf(result), tool).toContain(
        `The store holds no key for agent ${agentId + 1} on ${world.sandbox.url}`,
      );
      expect(errorOf(result).hint, tool).toMatch(/REKEY_AS/);
    }
    expect(world.sandbox.stats().rotations).toBe(0);
  });
});

// Runs last in this file: every result above went through `session.call`.
describe("secrets", () => {
  it("no tool result in this suite carries a raw key, except api_key when reveal is on", () => {
    expect(seen.results.length).toBeGreaterThan(20);
    expect(seen.secrets.size).toBeGreaterThan(10);
    let revealed = 0;
    for (const { tool, revealKeys, result } of seen.results) {
      let json = JSON.stringify(result);
      const newKey = (result.structuredContent as { api_key?: string } | undefined)?.api_key;
      if (revealKeys && newKey !== undefined) {
        expect(seen.secrets.has(newKey)).toBe(true);
        json = json.replaceAll(newKey, "<revealed>");
        revealed += 1;
      } else {
        expect(newKey, tool).toBeUndefined();
      }
      for (const secret of seen.secrets)
        expect(json.includes(secret), `${tool} leaked a key`).toBe(false);
      expect(json, tool).not.toMatch(/lf_[A-Za-z0-9_-]{20,}/);
    }
    expect(revealed).toBe(1);
  });
});

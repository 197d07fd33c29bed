import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createFaucetClient } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliHarness, RAW_SECRET, startCliHarness } from "./cli-harness.test-helper.js";

let harness: CliHarness;
beforeEach(async () => {
  harness = await startCliHarness();
});
afterEach(() => harness.close());

/**
 * A lightning-wallet setup as the public client leaves it: operator and agent keys in
 * ~/.lightning-wallet/credentials.json with its api_url, the agent active.
 */
async function lightningWalletSetup() {
  const client = createFaucetClient({ baseUrl: harness.sandbox.url });
  const operator = await client.register({ name: "ops" });
  const created = await client.createAgent(operator.apiKey, { name: "bot" });
  const home = join(harness.dir, ".lightning-wallet");
  await mkdir(home, { mode: 0o700 });
  const file = join(home, "credentials.json");
  const original = {
    version: 1,
    api_url: harness.sandbox.url,
    active: "agent",
    operator: {
      api_key: operator.apiKey,
      id: operator.operatorId,
      name: "ops",
      recovery_code: operator.recoveryCode,
      saved_at: "2026-01-01T00:00:00.000Z",
    },
    agent: {
      api_key: created.apiKey,
      id: created.agentId,
      name: "bot",
      saved_at: "2026-01-01T00:00:00.000Z",
    },
  };
  await writeFile(file, `${JSON.stringify(original, null, 2)}\n`, { mode: 0o600 });
  return {
    client,
    file,
    home,
    original,
    agentId: created.agentId,
    operatorId: operator.operatorId,
  };
}

/** The key the public client starts with (the variable unset): the file's active entry. */
async function clientKey(file: string): Promise<string> {
  const parsed = JSON.parse(await readFile(file, "utf8"));
  return parsed[parsed.active].api_key;
}

describe("rekey import lightning-wallet, then rotations (the acceptance path)", () => {
  it("imports with the file's api_url, adds the file as a target, and the client's keys keep working across operator and agent rotations", async () => {
    const setup = await lightningWalletSetup();
    // No URL anywhere but the file; an empty LIGHTNING_WALLET_HOME counts as unset.
    const env = { REKEY_API_URL: undefined, LIGHTNING_WALLET_HOME: "" };
    const imported = await harness.runJson(["import", "lightning-wallet", "--deliver", "--json"], {
      env,
    });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.json).toMatchObject({
      results: [
        { entry: "operator", result: "imported", delivery_target: "lightning-wallet-1" },
        { entry: "agent", result: "imported", delivery_target: "lightning-wallet-1" },
      ],
    });
    const status = await harness.runJson(["status"], { env });
    expect(status.json).toMatchObject({ base_url: harness.sandbox.url });

    // The file's active entry is the agent: the profile acts as it, and rotates its own key.
    const agentRotation = await harness.run(["rotate", "--yes"], { env });
    expect(agentRotation.code, agentRotation.stderr).toBe(0);
    const operatorRotation = await harness.run(
      ["--as", `operator:${setup.operatorId}`, "rotate", "--yes"],
      { env },
    );
    expect(operatorRotation.code, operatorRotation.stderr).toBe(0);

    const after = JSON.parse(await readFile(setup.file, "utf8"));
    // Both keys changed, both work, nothing else in the file did.
    expect(after.operator.api_key).not.toBe(setup.original.operator.api_key);
    expect(after.agent.api_key).not.toBe(setup.original.agent.api_key);
    await expect(setup.client.whoami(after.operator.api_key)).resolves.toMatchObject({
      type: "operator",
    });
    await expect(setup.client.whoami(await clientKey(setup.file))).resolves.toMatchObject({
      type: "agent",
      id: setup.agentId,
    });
    expect(after).toEqual({
      ...setup.original,
      operator: {
        ...setup.original.operator,
        api_key: after.operator.api_key,
        saved_at: after.operator.saved_at,
      },
      agent: {
        ...setup.original.agent,
        api_key: after.agent.api_key,
        saved_at: after.agent.saved_at,
      },
    });
    expect(`${imported.stdout}${imported.stderr}`).not.toMatch(RAW_SECRET);
  });

  it("asks on a terminal, and without an answer or --deliver says the file will go stale", async () => {
    await lightningWalletSetup();
    const asked = await harness.run(["import", "lightning-wallet"], {
      terminal: { stdin: true, stderr: true },
      confirmations: [false],
    });
    expect(asked.code, asked.stderr).toBe(0);
    expect(harness.asked.at(-1)).toMatch(/Keep .*credentials.json up to date/);
    expect(asked.stdout).toContain(
      "will keep the old key after a rotation: add it as a delivery target",
    );
    const listed = await harness.runJson(["deliver", "list"]);
    expect(listed.json).toMatchObject({ targets: [] });
  });
});

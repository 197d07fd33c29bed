import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createFaucetClient } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  startCliHarness,
} from "./cli-harness.test-helper.js";

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

describe("a lightning-wallet file holding another operator's key", () => {
  /** Operator 1 acts in the profile; the file holds Alice's (operator 2's) key with no id. */
  async function alicesFile() {
    await registerOperator(harness);
    const client = createFaucetClient({ baseUrl: harness.sandbox.url });
    const alice = await client.register({ name: "Alice" });
    const home = join(harness.dir, "lwh");
    await mkdir(home, { mode: 0o700 });
    const file = join(home, "credentials.json");
    const text = `${JSON.stringify(
      {
        version: 1,
        active: "operator",
        operator: {
          api_key: alice.apiKey,
          recovery_code: alice.recoveryCode,
          saved_at: "2026-01-01T00:00:00.000Z",
        },
      },
      null,
      2,
    )}\n`;
    await writeFile(file, text, { mode: 0o600 });
    return { file, text, alice };
  }

  it("deliver add refuses to overwrite it (CONFIG_INVALID, hint), keeps no target, and the key stays", async () => {
    const { file, text } = await alicesFile();
    const added = await harness.run(["deliver", "add", "lightning-wallet", file]);
    expect(added.code).toBe(2);
    expect(added.stderr).toMatch(
      /error: Refusing to deliver to .*credentials\.json: .*\(CONFIG_INVALID\)/,
    );
    expect(added.stderr).toContain("hint:");
    expect(`${added.stdout}${added.stderr}`).not.toMatch(RAW_SECRET);
    expect(await readFile(file, "utf8")).toBe(text);
    expect((await harness.runJson(["deliver", "list"])).json).toMatchObject({ targets: [] });
  });

  it("import files it beside the profile and advises --as; its advice and --deliver keep Alice's key in the file", async () => {
    const { file, text, alice } = await alicesFile();
    const imported = await harness.run([
      "import",
      "lightning-wallet",
      "--file",
      file,
      "--no-deliver",
    ]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain(`rekey --as operator:2 deliver add lightning-wallet ${file}`);
    expect(imported.stdout).not.toMatch(/rekey deliver add lightning-wallet/);
    expect(imported.stdout).not.toMatch(RAW_SECRET);
    // The key column shows its fingerprint, not "-".
    const status = await harness.runJson(["--as", "operator:2", "status"]);
    const aliceFingerprint = (status.json as { fingerprint: string }).fingerprint;
    expect(imported.stdout).toContain(aliceFingerprint);

    // The advice as a user might misread it (without --as) is refused, naming the owner.
    const misread = await harness.run(["deliver", "add", "lightning-wallet", file]);
    expect(misread.code).toBe(2);
    expect(misread.stderr).toContain("holds the key of operator:2");
    expect(await readFile(file, "utf8")).toBe(text);

    // --deliver adds the file as operator 2's target; the file still holds Alice's key.
    const delivering = await harness.runJson([
      "import",
      "lightning-wallet",
      "--file",
      file,
      "--deliver",
    ]);
    expect(delivering.code, delivering.stderr).toBe(0);
    expect(delivering.json).toMatchObject({
      results: [
        {
          entry: "operator",
          result: "imported",
          in_profile: false,
          fingerprint: aliceFingerprint,
          delivery_target: "lightning-wallet-1",
        },
      ],
    });
    expect(JSON.parse(await readFile(file, "utf8")).operator.api_key).toBe(alice.apiKey);
    expect((await harness.runJson(["deliver", "list"])).json).toMatchObject({ targets: [] });
    expect((await harness.runJson(["--as", "operator:2", "deliver", "list"])).json).toMatchObject({
      targets: [{ target: "lightning-wallet-1", state: "current" }],
    });
    // Asked again, --deliver says why it added nothing rather than staying silent.
    const again = await harness.run(["import", "lightning-wallet", "--file", file, "--deliver"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/operator: not added as a delivery target: .*lightning-wallet-1/);
  });
});

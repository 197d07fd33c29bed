import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  runBinary,
  startCliHarness,
} from "./cli-harness.test-helper.js";

// `rekey recover` starts the operator's 60-minute withdrawal cooldown, so inside a running one
// it is guarded like `rekey rotate`: refused without --force, confirmed with it.
let harness: CliHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe("rekey recover inside a withdrawal cooldown", () => {
  it("the built binary refuses without --force, needs --yes without a terminal, recovers with both", async () => {
    harness = await startCliHarness();
    const { sandbox, env } = harness;
    const codeFile = await registerOperator(harness);
    const code = await readFile(codeFile, "utf8");
    const rekey = (args: string[]) => runBinary(args, { env, stdin: code });
    expect((await rekey(["rotate", "--yes"])).code).toBe(0);
    const keyState = async () => {
      const status = JSON.parse((await rekey(["status", "--json"])).stdout) as {
        fingerprint?: string;
        cooldown_until?: string;
      };
      return { fingerprint: status.fingerprint, cooldownUntil: status.cooldown_until };
    };
    const before = await keyState();
    const recoversBefore = sandbox.stats().calls.recover ?? 0;

    const refused = await rekey(["recover"]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain("COOLDOWN_ACTIVE");
    expect(refused.stderr).toMatch(/hint: .*--force/);
    const unconfirmed = await rekey(["recover", "--force"]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain("Refusing to recover without confirmation");
    expect(unconfirmed.stderr).toMatch(/hint: .*--yes/);
    // Neither reached the faucet nor changed the store.
    expect(sandbox.stats().calls.recover ?? 0).toBe(recoversBefore);
    expect(await keyState()).toEqual(before);

    const recovered = await rekey(["recover", "--force", "--yes"]);
    expect(recovered.code).toBe(0);
    expect(recovered.stdout).toContain("recovered");
    expect(sandbox.stats().calls.recover ?? 0).toBe(recoversBefore + 1);
    for (const text of [refused, unconfirmed, recovered].flatMap((r) => [r.stdout, r.stderr])) {
      expect(text).not.toMatch(RAW_SECRET);
    }
  });

  it("outside a cooldown it asks nothing, as before", async () => {
    harness = await startCliHarness();
    const code = await readFile(await registerOperator(harness), "utf8");
    const recovered = await harness.run(["recover"], { stdin: code });
    expect(recovered.code).toBe(0);
    expect(harness.asked).toEqual([]);
  });

  it("on a terminal, --force warns and asks; declining changes nothing", async () => {
    harness = await startCliHarness();
    const code = await readFile(await registerOperator(harness), "utf8");
    const terminal = { stdin: true, stdout: true, stderr: true };
    expect((await harness.run(["rotate", "--yes"])).code).toBe(0);
    const recoversBefore = harness.sandbox.stats().calls.recover ?? 0;
    const declined = await harness.run(["recover", "--force"], {
      terminal,
      secrets: [code],
      confirmations: [false],
    });
    expect(declined.code).toBe(2);
    expect(declined.stderr).toContain("restarts it");
    expect(harness.asked).toContain("Recover the operator key now?");
    expect(harness.sandbox.stats().calls.recover ?? 0).toBe(recoversBefore);
    const accepted = await harness.run(["recover", "--force"], {
      terminal,
      secrets: [code],
      confirmations: [true],
    });
    expect(accepted.code).toBe(0);
    expect(harness.sandbox.stats().calls.recover ?? 0).toBe(recoversBefore + 1);
  });
});

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  runBinary,
  startCliHarness,
} from "./cli-harness.test-helper.js";

// `rekey recover` with another account's recovery code (operator 2's, in operator 1's profile):
// the faucet replaces operator 2's key, and the built binary must neither file it as operator 1's
// nor drop it.
let harness: CliHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe("rekey recover with another operator's recovery code", () => {
  it("leaves the profile's operator untouched, keeps the other account's new key in a rescue file, says so", async () => {
    harness = await startCliHarness();
    const { env, rescueDir } = harness;
    const rekey = (args: string[], stdin?: string) => runBinary(args, { env, stdin });
    await registerOperator(harness);
    const statusBefore = await rekey(["status"]);
    const keyLine = statusBefore.stdout.split("\n").find((line) => line.startsWith("key:"));
    // Operator 2, registered elsewhere; its recovery code pasted here by mistake.
    const other = (await (
      await fetch(harness.sandbox.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ action: "register", name: "someone else" }),
      })
    ).json()) as { operator_id: number; recovery_code: string; api_key: string };
    expect(other.operator_id).toBe(2);

    const refused = await rekey(["recover"], other.recovery_code);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("CONFIG_INVALID");
    expect(refused.stderr).toContain("operator 2");
    const [file] = await readdir(rescueDir);
    expect(file).toMatch(/^operator-2-.*\.json$/);
    const rescueFile = join(rescueDir, file ?? "");
    expect(refused.stderr).toMatch(
      new RegExp(
        `hint: .*rekey --profile NAME rescue import ${rescueFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
      ),
    );

    // Operator 1's profile is as it was: same key, no unfinished rotation, still operator 1.
    const statusAfter = await rekey(["status"]);
    expect(statusAfter.code).toBe(0);
    expect(statusAfter.stdout.split("\n").find((line) => line.startsWith("key:"))).toBe(keyLine);
    expect(statusAfter.stdout).toMatch(/identity: +operator 1 /);
    expect(statusAfter.stdout).toMatch(/unfinished rotation: +none/);
    expect(statusAfter.stdout).toMatch(/rescued key: +operator:2 fp:/);
    const history = await rekey(["history"]);
    expect(history.stdout).toMatch(/operator:2 +recover +failure \(CONFIG_INVALID\)/);
    expect(history.stdout).not.toMatch(/operator:1 +(recover|resolve)/);
    const doctor = await rekey(["doctor"]);
    expect(doctor.code).toBe(11);
    expect(doctor.stdout).toContain(`rekey rescue import ${rescueFile}`);

    // Following the hint gives operator 2 a profile of its own with its new key.
    expect((await rekey(["--profile", "other", "rescue", "import", rescueFile])).code).toBe(0);
    const otherStatus = await rekey(["--profile", "other", "status"]);
    expect(otherStatus.code).toBe(0);
    expect(otherStatus.stdout).toMatch(/identity: +operator 2 /);
    expect((await rekey(["doctor"])).code).toBe(0);

    // In --json the error names the rescue file as a field of its own, not only in its text.
    const again = await rekey(["recover", "--json"], other.recovery_code);
    expect(again.code).toBe(2);
    const { error } = JSON.parse(again.stderr) as { error: { code: string; rescue_file?: string } };
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.rescue_file).toMatch(/\/operator-2-.*\.json$/);
    expect(await readdir(rescueDir)).toContain(error.rescue_file?.split("/").pop());

    for (const result of [refused, statusAfter, history, doctor, otherStatus, again]) {
      expect(result.stdout + result.stderr).not.toMatch(RAW_SECRET);
    }
  });
});

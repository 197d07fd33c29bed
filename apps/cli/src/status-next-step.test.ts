import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  runBinary,
  startCliHarness,
} from "./cli-harness.test-helper.js";
import { statusDocument } from "./json-schemas.test-helper.js";

// The built binary as a child process against a real sandbox: what `rekey status` tells a user
// to do when the profile holds no key.
let harness: CliHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe("rekey status with no key", () => {
  it("after `acknowledge` of a lost operator key, points to `rekey recover`, not `register`", async () => {
    // No request_id replay and a dropped reply after the faucet rotated: the key is lost.
    harness = await startCliHarness({
      requestIdSupport: false,
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
    });
    const { dir, env } = harness;
    const rekey = (args: string[]) => runBinary(args, { env });
    const outputs: string[] = [];
    const run = async (args: string[]) => {
      const result = await rekey(args);
      outputs.push(result.stdout, result.stderr);
      return result;
    };

    expect((await run(["register", "--recovery-code-file", join(dir, "rc.txt")])).code).toBe(0);
    const lost = await run(["rotate", "--yes"]);
    expect(lost.code).toBe(9);
    expect((await run(["acknowledge"])).code).toBe(0);

    const status = await run(["status"]);
    expect(status.code).toBe(0);
    const keyLine = status.stdout.split("\n").find((line) => line.startsWith("key:")) ?? "";
    expect(keyLine).toContain("rekey recover");
    expect(keyLine).toContain("recovery code");
    expect(keyLine).not.toContain("register");

    const json = await run(["status", "--json"]);
    const document = statusDocument.parse(JSON.parse(json.stdout));
    expect(document.has_key).toBe(false);
    expect(document.next_step).toContain("rekey recover");

    for (const text of outputs) expect(text).not.toMatch(RAW_SECRET);
  });

  it("a profile that knows no operator still points to `register` or `login`", async () => {
    harness = await startCliHarness();
    // An empty store: status of a profile with nothing in it is NOT_FOUND (exit 4) with that hint.
    const status = await runBinary(["status"], { env: harness.env });
    expect(status.stderr + status.stdout).toMatch(/rekey register/);
  });
});

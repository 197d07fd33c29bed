import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RAW_SECRET, runBinary } from "./cli-harness.test-helper.js";

/**
 * `rekey deliver add store file:DIR`, with the built binary run from another directory: the
 * `file:` prefix the store option takes names DIR, not a directory called `file:DIR` under the
 * current one.
 */
describe("deliver add store with a file: location (built CLI)", () => {
  let sandbox: RunningSandbox;
  let dir: string;
  let cwd: string;
  let env: Record<string, string>;
  const rekey = (args: string[]) => runBinary(args, { env, cwd });

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    dir = await mkdtemp(join(tmpdir(), "rekey-store-path-"));
    cwd = join(dir, "cwd");
    await mkdir(cwd);
    env = { REKEY_HOME: join(dir, "home"), REKEY_API_URL: sandbox.url, HOME: dir };
    const registered = await rekey([
      "register",
      "--recovery-code-file",
      join(dir, "rc.txt"),
      "--json",
    ]);
    expect(registered.code, registered.stderr).toBe(0);
  });
  afterAll(async () => {
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses file:<its own store> as its own store, and creates no file:... directory", async () => {
    const own = await rekey(["deliver", "add", "store", `file:${env.REKEY_HOME}`, "--json"]);
    expect(own.code).toBe(2);
    expect(own.stderr).toContain("INVALID_INPUT");
    expect(own.stderr).toContain("rekey's own store");
    expect(own.stderr).toMatch(/hint/i);
    expect(await readdir(cwd)).toEqual([]);
    const listed = await rekey(["deliver", "list", "--json"]);
    expect(JSON.parse(listed.stdout).targets).toEqual([]);
  });

  it("delivers to the directory file:DIR names, absolute or relative to where it runs", async () => {
    const other = join(dir, "other-store");
    const added = await rekey(["deliver", "add", "store", `file:${other}`, "--json"]);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ delivery: { status: "delivered" } });
    expect(await readdir(other)).toContain("credentials.json");

    const relative = await rekey(["deliver", "add", "store", "file:relative-store", "--json"]);
    expect(relative.code, relative.stderr).toBe(0);
    expect(await readdir(cwd)).toEqual(["relative-store"]);
    const listed = await rekey(["deliver", "list", "--json"]);
    expect(JSON.stringify(JSON.parse(listed.stdout).targets)).not.toContain("file:");
    for (const output of [added.stdout, added.stderr, relative.stdout, listed.stdout])
      expect(output).not.toMatch(RAW_SECRET);
  });
});

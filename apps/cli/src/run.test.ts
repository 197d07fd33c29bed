import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliHarness, registerOperator, startCliHarness } from "./cli-harness.test-helper.js";

let harness: CliHarness;
beforeAll(async () => {
  harness = await startCliHarness();
  await registerOperator(harness);
});
afterAll(() => harness.close());

/**
 * A command that appends, each time it starts, the fingerprint-free facts of its environment
 * to `log` (which variable holds a key, and its SHA-256 prefix via rekey's fingerprint), and
 * exits 7 when `stop` appears.
 */
function loggingCommand(dir: string, variable: string) {
  const log = join(dir, `${variable}.log`);
  const stop = join(dir, `${variable}.stop`);
  const script = [
    'const fs=require("fs"),crypto=require("crypto");',
    `const key=process.env[${JSON.stringify(variable)}]||"";`,
    'const fp="fp:"+crypto.createHash("sha256").update(key).digest("hex").slice(0,12);',
    `fs.appendFileSync(${JSON.stringify(log)},fp+" "+(process.env.REKEY_API_KEY===undefined)+" "+process.argv.join(" ").includes("lf_")+"\\n");`,
    `process.on("SIGHUP",()=>fs.appendFileSync(${JSON.stringify(log)},"HUP\\n"));`,
    `setInterval(()=>{if(fs.existsSync(${JSON.stringify(stop)}))process.exit(7)},20);`,
  ].join("");
  return {
    argv: [process.execPath, "-e", script],
    lines: async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean),
    stop: () => writeFile(stop, ""),
  };
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function storedFingerprint(): Promise<string> {
  const status = await harness.runJson(["status"]);
  return (status.json as { fingerprint: string }).fingerprint;
}

describe("rekey run", () => {
  it("runs the command with the key in LIGHTNING_WALLET_API_KEY, restarts it on a rotation, and exits with its code", async () => {
    const command = loggingCommand(harness.dir, "LIGHTNING_WALLET_API_KEY");
    const running = harness.run(["run", "--", ...command.argv], {
      env: { REKEY_API_KEY: undefined },
    });
    const first = await storedFingerprint();
    expect(await until(command.lines, (lines) => lines.length >= 1)).toEqual([
      `${first} true false`,
    ]);

    expect((await harness.run(["rotate", "--yes"])).code).toBe(0);
    const second = await storedFingerprint();
    expect(await until(command.lines, (lines) => lines.length >= 2)).toEqual([
      `${first} true false`,
      `${second} true false`,
    ]);
    await command.stop();
    const result = await running;
    expect(result.code).toBe(7);
    expect(result.stderr).toContain(`key rotated (${second}); restarting the command`);
  });

  it("--signal sends the signal instead of restarting; --env names the variable", async () => {
    const command = loggingCommand(harness.dir, "WALLET_KEY");
    const running = harness.run([
      "run",
      "--env",
      "WALLET_KEY",
      "--signal",
      "hup",
      "--",
      ...command.argv,
    ]);
    const first = await storedFingerprint();
    await until(command.lines, (lines) => lines.length >= 1);
    expect((await harness.run(["rotate", "--yes", "--force"])).code).toBe(0);
    expect(await until(command.lines, (lines) => lines.length >= 2)).toEqual([
      `${first} true false`,
      "HUP",
    ]);
    await command.stop();
    expect((await running).code).toBe(7);
  });

  it("refuses a missing command, a bad variable or a bad signal", async () => {
    expect((await harness.run(["run"])).code).toBe(2);
    expect((await harness.run(["run", "--env", "1X", "--", "true"])).stderr).toContain(
      "is not a variable name",
    );
    expect((await harness.run(["run", "--signal", "NOPE", "--", "true"])).stderr).toContain(
      "is not a signal",
    );
  });

  it("exits 127 when the command is not found and 126 when it cannot be executed, as env and shells do", async () => {
    for (const command of ["/nonexistent/cmd", "rekey-no-such-command"]) {
      const missing = await harness.run(["run", "--", command, "arg"]);
      expect(missing.code, command).toBe(127);
      expect(missing.stderr, command).toContain(`Command not found: ${command}`);
      expect(missing.stderr, command).toContain("PATH");
      expect(missing.stderr, command).not.toMatch(/\n\s+at /);
    }
    const script = join(harness.dir, "not-executable.sh");
    await writeFile(script, "echo hi\n", { mode: 0o644 });
    const cases = [
      [script, "permission denied"],
      [harness.dir, "permission denied"],
      [join(script, "below"), "not a directory"],
    ] as const;
    for (const [command, reason] of cases) {
      const refused = await harness.run(["run", "--", command]);
      expect(refused.code, command).toBe(126);
      expect(refused.stderr, command).toContain(`Cannot execute ${command}: ${reason}`);
      expect(refused.stderr, command).not.toMatch(/\n\s+at /);
    }
    // --json: the same error, as the error document (its code from core's set).
    const json = await harness.run(["--json", "run", "--", "/nonexistent/cmd"]);
    expect(json.code).toBe(127);
    expect(JSON.parse(json.stderr)).toMatchObject({
      error: { code: "INVALID_INPUT", message: "Command not found: /nonexistent/cmd" },
    });
  });
});

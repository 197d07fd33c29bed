import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN_PATH, RAW_SECRET, runBinary } from "./cli-harness.test-helper.js";

/**
 * Runs the built CLI on a real terminal (a pty made by util-linux `script`), waits for
 * `prompt` to appear, then types Ctrl-C. Resolves with the exit code and all it printed.
 */
function pressCtrlCAt(
  args: string[],
  env: Record<string, string>,
  prompt: RegExp,
): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, BIN_PATH, ...args].map((part) => `'${part}'`).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(
      "script",
      ["--quiet", "--flush", "--return", "--command", command, "/dev/null"],
      {
        env: { PATH: process.env.PATH, NO_COLOR: "1", TERM: "dumb", ...env },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let output = "";
    let typed = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no exit after Ctrl-C; printed: ${JSON.stringify(output)}`));
    }, 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (!typed && prompt.test(output)) {
        typed = true;
        // A moment for the prompt to switch the terminal to raw mode after drawing itself.
        setTimeout(() => child.stdin.write("\x03"), 300);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** What a person sees: the terminal's text without its control sequences. */
const visible = (text: string) =>
  text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
    .replace(/\r/g, "")
    .trim();

describe("Ctrl-C at a prompt of the built CLI", () => {
  let sandbox: RunningSandbox;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    dir = await mkdtemp(join(tmpdir(), "rekey-ctrl-c-"));
    env = { REKEY_HOME: join(dir, "home"), REKEY_API_URL: sandbox.url, HOME: dir };
  });
  afterAll(async () => {
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("at the login prompt: exits 130 with one line, and stores nothing", async () => {
    const { code, output } = await pressCtrlCAt(["login"], env, /API key:/);
    expect(code).toBe(130);
    const lines = visible(output).split("\n");
    expect(lines.at(-1)).toBe("Cancelled: nothing was changed");
    expect(output).not.toMatch(/INTERNAL|Unexpected|error/i);
    await expect(readdir(join(dir, "home"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("at rotate's [y/N]: exits 130 with one line; the key, the store and the audit log stay", async () => {
    const registered = await runBinary(
      ["register", "--recovery-code-file", join(dir, "code.txt"), "--json"],
      { env },
    );
    expect(registered.code).toBe(0);
    const credentials = await readFile(join(dir, "home", "credentials.json"), "utf8");
    const audit = await readFile(join(dir, "home", "audit.jsonl"), "utf8");

    const { code, output } = await pressCtrlCAt(["rotate"], env, /\[y\/N\]/);
    expect(code).toBe(130);
    expect(visible(output).split("\n").at(-1)).toBe("Cancelled: nothing was changed");
    expect(output).not.toMatch(/INTERNAL|Aborted|error/i);
    expect(output).not.toMatch(RAW_SECRET);
    // Nothing changed and nothing was journaled: the very same files.
    expect(await readFile(join(dir, "home", "credentials.json"), "utf8")).toBe(credentials);
    expect(await readFile(join(dir, "home", "audit.jsonl"), "utf8")).toBe(audit);
    const status = await runBinary(["status", "--json"], { env });
    expect(status.code).toBe(0);
  });
});

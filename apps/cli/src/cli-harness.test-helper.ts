import { copyFile, cp, mkdir, mkdtemp, readFile, realpath, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Clock } from "@rekey/core";
import { type FaultSpec, type RunningSandbox, startSandbox } from "@rekey/sandbox";
import type { CliDeps, TerminalFlags } from "./context.js";
import { createOpenRekey } from "./open-rekey.js";
import { runCli } from "./program.js";
import { runNodeScript } from "./run-child.js";
import { VERSION } from "./version.js";

/** What one CLI run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run one command in-process. */
export interface RunOptions {
  /** Text on stdin (stdin is then not a terminal). */
  stdin?: string;
  terminal?: Partial<TerminalFlags>;
  /** Answers for hidden prompts, in order. */
  secrets?: string[];
  /** Answers for yes/no questions, in order; a function answers when called (and may act first). */
  confirmations?: (boolean | (() => Promise<boolean>))[];
  env?: Record<string, string | undefined>;
  /** A stream standing in for a terminal's stderr, for progress bars. */
  progressStream?: NodeJS.WritableStream;
}

/** A real sandbox on loopback and a real temporary REKEY_HOME, driving the CLI in-process. */
export interface CliHarness {
  sandbox: RunningSandbox;
  dir: string;
  home: string;
  /** The rescue directory (REKEY_RESCUE_DIR in `env`), inside `dir`. */
  rescueDir: string;
  env: Record<string, string | undefined>;
  /** Questions the CLI asked (prompts and confirmations), in order. */
  asked: string[];
  run(args: string[], options?: RunOptions): Promise<CliRun>;
  /** Runs and parses stdout as JSON (asserting exit 0 is the caller's job). */
  runJson(args: string[], options?: RunOptions): Promise<CliRun & { json: unknown }>;
  close(): Promise<void>;
}

/**
 * Starts a sandbox (faults optional, shared test clock optional, `requestIdSupport: false` for
 * a faucet that cannot replay by request id), a temp REKEY_HOME and a rescue directory beside it.
 */
export async function startCliHarness(
  options: { faults?: FaultSpec[]; clock?: Clock; requestIdSupport?: boolean } = {},
): Promise<CliHarness> {
  const sandbox = await startSandbox({
    port: 0,
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.requestIdSupport === undefined
      ? {}
      : { requestIdSupport: options.requestIdSupport }),
  });
  const dir = await mkdtemp(join(tmpdir(), "rekey-cli-test-"));
  const home = join(dir, "rekey-home");
  const rescueDir = join(dir, "rescue");
  const env: Record<string, string | undefined> = {
    REKEY_HOME: home,
    REKEY_RESCUE_DIR: rescueDir,
    REKEY_API_URL: sandbox.url,
    NO_COLOR: "1",
    HOME: dir,
  };
  const asked: string[] = [];

  const run = async (args: string[], runOptions: RunOptions = {}): Promise<CliRun> => {
    let stdout = "";
    let stderr = "";
    const secrets = [...(runOptions.secrets ?? [])];
    const confirmations = [...(runOptions.confirmations ?? [])];
    const runEnv = { ...env, ...runOptions.env };
    const deps: CliDeps = {
      version: VERSION,
      openRekey: createOpenRekey({ env: runEnv, clock: options.clock }),
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      readStdin: async () => runOptions.stdin ?? "",
      terminal: {
        stdin: runOptions.stdin === undefined && (runOptions.terminal?.stdin ?? false),
        stdout: runOptions.terminal?.stdout ?? false,
        stderr: runOptions.terminal?.stderr ?? false,
      },
      env: runEnv,
      homeDir: dir,
      promptSecret: async (message) => {
        asked.push(message);
        const answer = secrets.shift();
        if (answer === undefined) throw new Error(`unexpected prompt: ${message}`);
        return answer;
      },
      confirm: async (question) => {
        asked.push(question);
        const answer = confirmations.shift();
        if (answer === undefined) throw new Error(`unexpected question: ${question}`);
        return typeof answer === "function" ? answer() : answer;
      },
      clock: options.clock ?? { now: () => Date.now() },
      waitForInterrupt: () => Promise.resolve(),
      progressStream: runOptions.progressStream,
    };
    const code = await runCli(deps, args);
    return { code, stdout, stderr };
  };

  return {
    sandbox,
    dir,
    home,
    rescueDir,
    env,
    asked,
    run,
    async runJson(args, runOptions) {
      const result = await run([...args, "--json"], runOptions);
      let json: unknown;
      try {
        json = JSON.parse(result.stdout);
      } catch {
        json = undefined;
      }
      return { ...result, json };
    },
    async close() {
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Registers an operator (recovery code to a file in the harness dir); returns the code's path. */
export async function registerOperator(harness: CliHarness): Promise<string> {
  const file = join(harness.dir, `recovery-${Math.random().toString(36).slice(2)}.txt`);
  const result = await harness.run(["register", "--recovery-code-file", file]);
  if (result.code !== 0) throw new Error(`register failed: ${result.stderr}`);
  return file;
}

/** The built command: the launcher that answers --version and runs dist/cli.cjs. */
export const BIN_PATH = fileURLToPath(new URL("../dist/rekey.cjs", import.meta.url));

/**
 * Installs the built CLI as a package manager would (package.json and dist/, nothing else) in
 * `<dir>/node_modules/@rekey/cli`, away from this repository's node_modules: whatever dist/
 * fails to bundle cannot be found from there. Returns the installed command: the file its
 * package.json names as the `rekey` bin (the CommonJS launcher, which runs dist/cli.cjs).
 */
export async function installBuiltCli(
  dir: string,
  options: { withPg?: boolean } = {},
): Promise<string> {
  const packageDir = join(dir, "node_modules", "@rekey", "cli");
  const sourceDir = fileURLToPath(new URL("..", import.meta.url));
  await mkdir(packageDir, { recursive: true });
  await copyFile(join(sourceDir, "package.json"), join(packageDir, "package.json"));
  await cp(join(sourceDir, "dist"), join(packageDir, "dist"), {
    recursive: true,
    filter: (source) => !source.endsWith("meta.json"),
  });
  const manifest = JSON.parse(await readFile(join(packageDir, "package.json"), "utf8")) as {
    bin: { rekey: string };
  };
  if (options.withPg === true) {
    // pg is an optional peer of the CLI, installed beside it for a postgres:// store (as
    // `npm install -g pg` puts it beside a global rekey): the workspace's own copy.
    await symlink(
      await realpath(join(sourceDir, "node_modules", "pg")),
      join(dir, "node_modules", "pg"),
    );
  }
  return join(packageDir, manifest.bin.rekey);
}

/** Runs the built binary (`bin`, default dist/rekey.cjs) as a child process. */
export function runBinary(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    stdin?: string;
    bin?: string;
    /** The directory it runs in (relative paths on its command line are against it). */
    cwd?: string;
  } = {},
): Promise<CliRun> {
  return runNodeScript(options.bin ?? BIN_PATH, args, {
    env: { PATH: process.env.PATH, NO_COLOR: "1", ...options.env },
    stdin: options.stdin ?? "",
    cwd: options.cwd,
  });
}

/** Anything that looks like a faucet key or recovery code. */
export const RAW_SECRET = /lfr?_[A-Za-z0-9_-]{20,}/;

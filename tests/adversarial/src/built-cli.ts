import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ERROR_CODES } from "@rekey/core";
import { expect } from "vitest";
import { record } from "./transcript.js";

const cliPackage = createRequire(import.meta.url).resolve("@rekey/cli/package.json");
/**
 * The built `rekey` (turbo builds it before the tests run), or REKEY_ADVERSARIAL_BIN: a copy
 * of it elsewhere, so that a long run is not disturbed by a rebuild of the working tree.
 */
export const REKEY_BIN =
  process.env.REKEY_ADVERSARIAL_BIN ?? join(dirname(cliPackage), "dist", "rekey.cjs");

/** One finished run of the built CLI. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link startCli}. */
export interface CliOptions {
  env: Record<string, string | undefined>;
  stdin?: string;
  cwd?: string;
}

/**
 * Starts the built CLI as a child process (stdin piped, no terminal); the result resolves
 * when it ends, however it ends. Everything it prints goes into the transcript.
 */
export function startCli(
  args: string[],
  options: CliOptions,
): { child: ChildProcess; result: Promise<CliRun> } {
  const { child, result } = startRecorded(REKEY_BIN, args, `rekey ${args.join(" ")}`, options);
  return { child, result };
}

/**
 * Starts `node script args` (stdin piped: `options.stdin`, then closed); `result` resolves when
 * it ends, however it ends, after what it printed went into the transcript under `label`.
 * `printed()` is what it has printed so far.
 */
export function startRecorded(
  script: string,
  args: string[],
  label: string,
  options: CliOptions,
): {
  child: ChildProcess;
  result: Promise<CliRun>;
  printed(): { stdout: string; stderr: string };
} {
  const child = spawn(process.execPath, [script, ...args], {
    env: { PATH: process.env.PATH, NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  // A child killed before reading its stdin makes the write fail with EPIPE: not our concern.
  child.stdin?.on("error", () => {});
  child.stdin?.end(options.stdin ?? "");
  const result = new Promise<CliRun>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      const shown = label.slice(0, 200);
      record(`${shown} (stdout)`, stdout);
      record(`${shown} (stderr)`, stderr);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, result, printed: () => ({ stdout, stderr }) };
}

/** Runs the built CLI to its end. */
export function runCli(args: string[], options: CliOptions): Promise<CliRun> {
  return startCli(args, options).result;
}

/** Exit codes of a CLI that did not crash: success, each mapped error code, doctor's 11. */
const HANDLED_EXIT_CODES = new Set([0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

/**
 * The invariant of every run: it ended by itself with an exit code of the documented table
 * other than 1 (INTERNAL, a bug), printed no stack trace or "Unexpected error", and in
 * `--json` mode its error (if any) carries a code from core's closed set.
 */
export function expectHandled(run: CliRun, label: string, json: boolean): void {
  const context = `${label}\nexit ${run.code} signal ${run.signal}\nstderr: ${run.stderr.slice(0, 600)}`;
  expect(run.signal, context).toBeNull();
  expect(HANDLED_EXIT_CODES.has(run.code ?? -1), context).toBe(true);
  expect(run.stderr, context).not.toMatch(/Unexpected error|\n\s+at .+:\d+:\d+\)?\n|INTERNAL/);
  // (`--json` given as another option's value leaves the output human: only JSON is parsed.)
  if (json && run.code !== 0 && run.stderr.trimStart().startsWith("{")) {
    let document: { error?: { code?: string } } | undefined;
    try {
      document = JSON.parse(run.stderr.trim()) as typeof document;
    } catch {
      document = undefined;
    }
    expect(document?.error, context).toBeDefined();
    expect(ERROR_CODES as readonly string[], context).toContain(document?.error?.code);
  }
}

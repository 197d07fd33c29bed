import { spawn } from "node:child_process";

/** What a finished child process printed, and how it exited. */
export interface ChildRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node script ...args` to completion, capturing both streams; `stdin` is written and closed
 * (nothing when undefined). Rejects only when the process cannot start.
 */
export function runNodeScript(
  script: string,
  args: string[],
  options: {
    env: Record<string, string | undefined>;
    stdin?: string | undefined;
    cwd?: string | undefined;
  },
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: options.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin?.end(options.stdin);
  });
}

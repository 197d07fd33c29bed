import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

/**
 * Runs a rotation in another Node process (test-fixtures/rotate-child.mjs), importing core's BUILT
 * entry: `@rekey/core` resolves to dist through the package's own exports, and turbo builds
 * before it tests.
 */
const CHILD_SCRIPT = join(import.meta.dirname, "..", "..", "test-fixtures", "rotate-child.mjs");

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What the child printed after "ready": its rotation result or `{ error }` as JSON. */
  output: string;
}

interface ChildArgs {
  dir: string;
  url: string;
  crashAfter?: string;
  /** Prints "stalled" after this step and waits there (see {@link startStalledRotation}). */
  stallAfter?: string;
  force?: boolean;
}

function spawnChild(args: ChildArgs & { barrier: boolean }): {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<ChildOutcome>;
} {
  const child = spawn(process.execPath, [CHILD_SCRIPT, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let output = "";
  let signalReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    signalReady = resolve;
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    if (output.startsWith("ready\n")) {
      output = output.slice("ready\n".length);
      signalReady();
    }
  });
  const done = new Promise<ChildOutcome>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, output }));
  });
  return { child, ready, done };
}

/**
 * Starts one rotation in a child process that stops (SIGSTOP) right after `stallAfter`, as a
 * suspended laptop would: `stalled` resolves once it is stopped, `resume()` continues it (SIGCONT),
 * and `done` gives what it printed after "stalled".
 */
export async function startStalledRotation(
  args: ChildArgs & { stallAfter: string },
): Promise<{ resume(): void; done: Promise<ChildOutcome> }> {
  const { child, done } = spawnChild({ ...args, barrier: false });
  child.stdin?.end();
  let printed = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      printed += chunk.toString();
      if (printed.startsWith("stalled\n")) resolve();
    });
    void done.then((outcome) => reject(new Error(`the child ended first: ${outcome.output}`)));
  });
  child.kill("SIGSTOP");
  return {
    resume: () => child.kill("SIGCONT"),
    done: done.then((outcome) => ({
      ...outcome,
      output: outcome.output.replace(/^stalled\n/, ""),
    })),
  };
}

/** Runs one rotation in a child process. */
export async function runRotationChild(args: ChildArgs): Promise<ChildOutcome> {
  const { child, done } = spawnChild({ ...args, barrier: false });
  child.stdin?.end();
  return done;
}

/** Starts `count` children, waits until all are loaded, then lets them rotate at once. */
export async function runRotationChildrenAtOnce(
  count: number,
  args: ChildArgs,
): Promise<ChildOutcome[]> {
  const children = Array.from({ length: count }, () => spawnChild({ ...args, barrier: true }));
  await Promise.all(children.map((entry) => entry.ready));
  for (const { child } of children) child.stdin?.end("go\n");
  return Promise.all(children.map((entry) => entry.done));
}

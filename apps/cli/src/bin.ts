import { homedir } from "node:os";
import { isatty } from "node:tty";
import type { CliDeps } from "./context.js";
import { VERSION } from "./version.js";

// The composition root: the only file that reads process.env, argv, stdin and the TTY flags.
// Core, prompts and command code load lazily, so `rekey --version` stays close to bare node.

const args = process.argv.slice(2);

// zod compiles a parser for each object schema (`new Function`) on the schema's first parse. A
// server parsing the same shapes for hours gains from it; a command parses each shape once or
// twice, and the code cache cannot keep generated code: jitless parsing made `rekey status` 5-9%
// faster (bench/README.md, "Cold start"). zod reads the setting when it builds a schema, so it
// is set here, before any is built; zod shares its config through this global by design
// (`z.config()` writes the same object).
const zodGlobal = globalThis as { __zod_globalConfig?: { jitless?: boolean } };
zodGlobal.__zod_globalConfig ??= {};
zodGlobal.__zod_globalConfig.jitless = true;

const env: Record<string, string | undefined> = { ...process.env };
// isatty() on the descriptors, not process.stdin.isTTY: touching process.stdin builds a stream.
const terminal = { stdin: isatty(0), stdout: isatty(1), stderr: isatty(2) };

/** Ctrl-C at a prompt becomes a PromptCancelled (exit 130); any other error passes through. */
async function asCancel(error: unknown): Promise<never> {
  const { isPromptInterrupt, PromptCancelled } = await import("./prompt-cancelled.js");
  throw isPromptInterrupt(error) ? new PromptCancelled() : error;
}

const deps: CliDeps = {
  version: VERSION,
  async openRekey(globals) {
    const { createOpenRekey } = await import("./open-rekey.js");
    return createOpenRekey({ env })(globals);
  },
  stdout: process.stdout,
  stderr: process.stderr,
  async readStdin() {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString("utf8");
  },
  terminal,
  env,
  homeDir: homedir(),
  async promptSecret(message) {
    const { default: password } = await import("@inquirer/password");
    // Prompts go to stderr so stdout stays clean for --json and pipes.
    return password({ message, mask: "*" }, { output: process.stderr }).catch(asCancel);
  },
  async confirm(question) {
    const { createInterface } = await import("node:readline/promises");
    const readline = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await readline.question(`${question} [y/N] `).catch((error: unknown) => {
        // Raw mode echoes nothing for Ctrl-C: end the prompt's line before the cancel's.
        process.stderr.write("\n");
        return asCancel(error);
      });
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      readline.close();
    }
  },
  clock: { now: () => Date.now() },
  waitForInterrupt() {
    return new Promise((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
  },
  onSignals(handler) {
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"];
    for (const signal of signals) process.on(signal, handler);
    return () => {
      for (const signal of signals) process.off(signal, handler);
    };
  },
  progressStream: terminal.stderr ? process.stderr : undefined,
};

if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  // The one answer that needs no parser: skip loading commander (same output as its --version).
  process.stdout.write(`${VERSION}\n`);
} else {
  // `rekey history | head`: the reader went away; stop quietly like other Unix tools.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw error;
    });
  }
  // No top-level await: the bundle is CommonJS (dist/cli.cjs, for the code cache).
  void import("./program.js").then(async ({ runCli }) => {
    process.exitCode = await runCli(deps, args);
  });
}

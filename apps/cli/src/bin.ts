#!/usr/bin/env node
import { homedir } from "node:os";
import type { CliDeps } from "./context.js";
import { runCli } from "./program.js";

// The composition root: the only file that reads process.env, argv, stdin and the TTY flags.
// Core, prompts and command code load lazily, so `rekey --version` stays close to bare node.

const env: Record<string, string | undefined> = { ...process.env };
const terminal = {
  stdin: process.stdin.isTTY === true,
  stdout: process.stdout.isTTY === true,
  stderr: process.stderr.isTTY === true,
};

const deps: CliDeps = {
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
    return password({ message, mask: "*" }, { output: process.stderr });
  },
  async confirm(question) {
    const { createInterface } = await import("node:readline/promises");
    const readline = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await readline.question(`${question} [y/N] `);
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
  progressStream: terminal.stderr ? process.stderr : undefined,
};

process.exitCode = await runCli(deps, process.argv.slice(2));

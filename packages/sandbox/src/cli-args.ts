import { Command, CommanderError } from "commander";
import { parseFaultSpec } from "./faults.js";
import type { SandboxOptions } from "./server.js";

/**
 * Turns `rekey-sandbox` arguments into sandbox options.
 * Throws an `Error` with a usage hint for an unknown flag, a bad port or a bad fault spec.
 */
export function parseCliArgs(args: readonly string[]): SandboxOptions {
  let values: {
    port?: string;
    host?: string;
    data?: string;
    testClock?: boolean;
    requestId: boolean;
    fault?: string[];
  };
  try {
    values = createCommand()
      .parse([...args], { from: "user" })
      .opts();
  } catch (error) {
    throw new Error(
      error instanceof CommanderError ? error.message.replace(/^error: /, "") : String(error),
    );
  }
  const portText = values.port ?? "0";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new Error(`--port must be a whole number from 0 to 65535, got "${portText}"`);
  }
  return {
    port,
    host: values.host ?? "127.0.0.1",
    ...(values.data === undefined ? {} : { dataFile: values.data }),
    testClock: values.testClock === true,
    requestIdSupport: values.requestId,
    faults: (values.fault ?? []).map(parseFaultSpec),
  };
}

/**
 * The command line, declared with commander like every rekey binary's, so help and errors read
 * alike. `--help` and `--version` are answered by bin.ts before parsing.
 */
function createCommand(): Command {
  return new Command("rekey-sandbox")
    .description(
      "A local Lightning Faucet with the real rotation and cooldown rules, on 127.0.0.1.\nWithout --data it keeps its accounts and keys in memory: a restart forgets every key.",
    )
    .helpOption(false)
    .option("--port <n>", "port (default 0: a free one)")
    .option("--host <addr>", "address to listen on (default 127.0.0.1)")
    .option("--data <file>", "keep the accounts and keys in this file across restarts")
    .option("--test-clock", "start with a test clock (sandbox_advance_clock)")
    .option("--no-request-id", "ignore request_id (replays are not recognised)")
    .option(
      "--fault <action:nth:kind[:delayMs]>",
      "inject a fault into the nth call of an action (repeatable)",
      (spec: string, specs: string[] | undefined) => [...(specs ?? []), spec],
    )
    .option("--quiet", "no log line per request")
    .option("-h, --help", "show this help")
    .option("-v, --version", "show the version")
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
}

/** `--quiet` silences the per-request log lines on stderr. */
export function isQuiet(args: readonly string[]): boolean {
  return args.includes("--quiet");
}

/** `rekey-sandbox --help`, also printed with an argument error. */
export const USAGE = createCommand().helpInformation().trimEnd();

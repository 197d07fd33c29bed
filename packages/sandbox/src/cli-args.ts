import { parseArgs } from "node:util";
import { parseFaultSpec } from "./faults.js";
import type { SandboxOptions } from "./server.js";

/**
 * Turns `rekey-sandbox` arguments into sandbox options.
 * Throws an `Error` with a usage hint for an unknown flag, a bad port or a bad fault spec.
 */
export function parseCliArgs(args: readonly string[]): SandboxOptions {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      data: { type: "string" },
      "test-clock": { type: "boolean", default: false },
      "no-request-id": { type: "boolean", default: false },
      fault: { type: "string", multiple: true, default: [] },
      quiet: { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be a whole number from 0 to 65535, got "${values.port}"`);
  }
  return {
    port,
    host: values.host,
    ...(values.data === undefined ? {} : { dataFile: values.data }),
    testClock: values["test-clock"],
    requestIdSupport: !values["no-request-id"],
    faults: values.fault.map(parseFaultSpec),
  };
}

/** `--quiet` silences the per-request log lines on stderr. */
export function isQuiet(args: readonly string[]): boolean {
  return args.includes("--quiet");
}

/** The usage text printed with an argument error. */
export const USAGE = `usage: rekey-sandbox [--port N] [--host ADDR] [--data FILE] [--test-clock]
                     [--no-request-id] [--fault action:nth:kind[:delayMs]]... [--quiet]
       rekey-sandbox -h, --help | -v, --version

Without --data the sandbox keeps its accounts and keys in memory: a restart forgets every key.`;

import { resolve } from "node:path";
import { RekeyError } from "@rekey/core";
import type { CommandContext } from "../context.js";

/** Printed when the sandbox keeps its state in memory only. */
export const NO_DATA_WARNING =
  "warning: no --data FILE: the sandbox keeps its accounts and keys in memory, and a restart forgets every key (keys already stored by rekey then stop working).";

/**
 * `rekey sandbox`: runs the local faucet on 127.0.0.1 until SIGINT/SIGTERM.
 * @throws RekeyError INVALID_INPUT (bad port), CONFIG_INVALID (port in use, corrupt data file)
 */
export async function runSandbox(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const portText = typeof options.port === "string" ? options.port : "0";
  const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!Number.isInteger(port) || port > 65535) {
    throw new RekeyError("INVALID_INPUT", `--port ${JSON.stringify(portText)} is not a port`, {
      hint: "Use 0 (any free port) to 65535.",
    });
  }
  const { startSandbox } = await import("@rekey/sandbox");
  let sandbox: Awaited<ReturnType<typeof startSandbox>>;
  try {
    sandbox = await startSandbox({
      port,
      testClock: options.testClock === true,
      ...(typeof options.data === "string" ? { dataFile: resolve(options.data) } : {}),
    });
  } catch (error) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `The sandbox did not start: ${error instanceof Error ? error.message : String(error)}`,
      { hint: "Pick another --port, or check the --data file.", cause: error },
    );
  }
  context.output.result("sandbox", { url: sandbox.url, port: sandbox.port }, () =>
    [
      `sandbox faucet listening at ${context.output.colors.bold(sandbox.url)}`,
      `  use it: REKEY_API_URL=${sandbox.url} rekey register --recovery-code-file recovery.txt`,
      "  Ctrl-C stops it.",
    ].join("\n"),
  );
  if (typeof options.data !== "string")
    context.output.note(context.output.colors.yellow(NO_DATA_WARNING));
  try {
    await context.deps.waitForInterrupt();
  } finally {
    await sandbox.close();
  }
  context.output.note("sandbox stopped");
}

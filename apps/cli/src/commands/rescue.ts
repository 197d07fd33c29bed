import type { CommandContext } from "../context.js";
import { parseAgentOption } from "./input.js";

/**
 * `rekey rescue import FILE`: stores the key of a rescue file (written when the store refused
 * a key the faucet had issued), finishes the rotation it came from, then removes the file.
 * @throws RekeyError INVALID_INPUT (not a rescue file), CONFIG_INVALID (another faucet), STORE_*
 */
export async function runRescueImport(context: CommandContext, file: string): Promise<void> {
  const result = await context.withRekey(({ rekey }) => rekey.importRescue(file));
  context.output.result(
    "rescue import",
    { label: result.label, fingerprint: result.fingerprint },
    () => `${context.output.colors.green("imported")} ${result.label} key ${result.fingerprint}`,
  );
}

/**
 * `rekey acknowledge [--agent ID]`: acknowledges a recorded key loss (KEY_LOST), which status
 * and doctor show until then; the acknowledgement is audited.
 * @throws RekeyError NOT_FOUND (no loss recorded), STORE_*
 */
export async function runAcknowledge(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const principal = parseAgentOption(options.agent);
  const result = await context.withRekey(({ rekey }) => rekey.acknowledgeKeyLost(principal));
  context.output.result(
    "acknowledge",
    { label: result.label, request_id: result.requestId },
    () => `acknowledged the lost ${result.label} key (rotation ${result.requestId})`,
  );
}

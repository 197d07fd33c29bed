import type { CommandContext } from "../context.js";
import { formatFields } from "../output.js";
import { outcomeLines } from "./deliver.js";
import { readSecret } from "./input.js";
import { rotationPayload } from "./rotation-view.js";

/**
 * `rekey recover`: gets a new operator key with the recovery code (stdin or a hidden prompt).
 * Starts the 60-minute operator withdrawal cooldown.
 * @throws RekeyError INVALID_INPUT, UNAUTHORIZED (wrong code), STORE_*, UPSTREAM_*
 */
export async function runRecover(context: CommandContext): Promise<void> {
  const code = await readSecret(context, "recovery code");
  const result = await context.withRekey(({ rekey }) => rekey.recover(code));
  context.output.result("recover", rotationPayload(result), () =>
    [
      `${context.output.colors.green("recovered")} ${result.label}: new key stored`,
      formatFields([
        ["new key", result.newFingerprint],
        [
          "withdrawals blocked until",
          `${context.output.time(result.cooldownUntil)} (${result.cooldownMinutes} min)`,
        ],
      ]),
      ...(result.deliveries !== undefined && result.deliveries.length > 0
        ? [
            "  deliveries:",
            outcomeLines(result.deliveries, context.output.colors).replace(/^/gm, "  "),
          ]
        : []),
    ].join("\n"),
  );
}

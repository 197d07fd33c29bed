import { isRekeyError, RekeyError, type RotationResult } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatFields } from "../output.js";
import { outcomeLines } from "./deliver.js";
import { confirmOrRefuse, readSecret } from "./input.js";
import { rotationPayload } from "./rotation-view.js";

/**
 * `rekey recover [--force] [--yes]`: gets a new operator key with the recovery code (stdin or a
 * hidden prompt). Starts the 60-minute operator withdrawal cooldown, so inside a running one,
 * while the operator's key is stored, it is guarded as a rotation is: refused without `--force`
 * (core's COOLDOWN_ACTIVE, nothing changed); with `--force` it asks on a terminal, and needs
 * `--yes` without one. A lost key (KEY_LOST) is recovered without either.
 * @throws RekeyError INVALID_INPUT (no --yes without a terminal, declined), COOLDOWN_ACTIVE,
 *   UNAUTHORIZED (wrong code), STORE_*, UPSTREAM_*
 */
export async function runRecover(
  context: CommandContext,
  options: Record<string, unknown> = {},
): Promise<void> {
  const force = options.force === true;
  const yes = options.yes === true;
  const code = await readSecret(context, "recovery code");
  const result = await context.withRekey(async ({ rekey }): Promise<RotationResult> => {
    if (force && yes) return rekey.recover(code, { force: true });
    // Core refuses inside a cooldown before calling the faucet: that refusal is the question.
    try {
      return await rekey.recover(code);
    } catch (error) {
      if (!isRekeyError(error, "COOLDOWN_ACTIVE")) throw error;
      if (!force) throw cooldownRefusal(error);
      const until = error.details.cooldownUntil;
      context.output.note(
        context.output.colors.yellow(
          `The operator is inside a withdrawal cooldown${typeof until === "string" ? ` until ${context.output.time(until)}` : ""}: recovering now restarts it (60 minutes from now).`,
        ),
      );
      await confirmOrRefuse(context, "Recover the operator key now?", yes, {
        verb: "recover",
        dryRun: false,
      });
      return rekey.recover(code, { force: true });
    }
  });
  context.output.result("recover", rotationPayload(result), () =>
    [
      `${context.output.colors.green("recovered")} ${result.label}${result.operatorId === undefined ? "" : ` ${result.operatorId}`}: new key stored`,
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

/** Core's COOLDOWN_ACTIVE in the CLI's words: the flag that overrides it. */
function cooldownRefusal(error: RekeyError): RekeyError {
  return new RekeyError("COOLDOWN_ACTIVE", error.message, {
    hint: "Recovering now restarts the 60-minute withdrawal block, and the stored operator key still serves: wait for the cooldown to end, or pass --force to recover anyway (with --yes without a terminal).",
    details: error.details,
    cause: error,
  });
}

import type { CommandContext } from "../context.js";
import { formatFields } from "../output.js";
import { parseAgentOption, parseSats } from "./input.js";

/**
 * `rekey withdraw --amount SATS [--agent ID]` (sandbox stand-in for a BOLT11 payment).
 * @throws RekeyError COOLDOWN_ACTIVE (inside a rotation's cooldown), INSUFFICIENT_BALANCE,
 *   INVALID_INPUT, NOT_FOUND, UNAUTHORIZED, STORE_*, UPSTREAM_*
 */
export async function runWithdraw(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const amountSats = parseSats(options.amount, "--amount");
  const principal = parseAgentOption(options.agent);
  const result = await context.withRekey(({ rekey }) =>
    rekey.withdraw({ amountSats, ...(principal === undefined ? {} : { principal }) }),
  );
  const payload = {
    amount_sats: result.amountSats,
    fee_sats: result.feeSats,
    balance_sats: result.newBalance,
    payment_hash: result.paymentHash,
  };
  context.output.result("withdraw", payload, () =>
    [
      `${context.output.colors.green("withdrew")} ${result.amountSats} sats`,
      formatFields([
        ["fee", `${result.feeSats} sats`],
        ["new balance", `${result.newBalance} sats`],
        ["payment hash", result.paymentHash],
      ]),
    ].join("\n"),
  );
}

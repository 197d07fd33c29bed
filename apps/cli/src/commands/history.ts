import { RekeyError } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatTable } from "../output.js";

/**
 * `rekey history [--verify]`: the audit log; `--verify` checks its hash chain.
 * @throws RekeyError STORE_CORRUPT when the chain is broken (after printing the log),
 *   STORE_UNAVAILABLE
 */
export async function runHistory(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const verify = options.verify === true;
  const { entries, verification } = await context.withRekey(async ({ rekey }) => ({
    entries: await rekey.history(),
    verification: verify ? await rekey.verifyHistory() : undefined,
  }));
  const { colors } = context.output;
  context.output.result(
    "history",
    { entries, ...(verification === undefined ? {} : { verification }) },
    () => {
      const lines =
        entries.length === 0
          ? ["The audit log is empty."]
          : [
              formatTable(
                ["seq", "at", "surface", "profile", "principal", "action", "outcome", "key"],
                entries.map((entry) => [
                  String(entry.seq),
                  entry.at,
                  entry.surface,
                  entry.profile,
                  entry.principal,
                  entry.action,
                  entry.errorCode === undefined
                    ? entry.outcome
                    : `${entry.outcome} (${entry.errorCode})`,
                  entry.newFingerprint === undefined
                    ? (entry.oldFingerprint ?? "-")
                    : entry.oldFingerprint === undefined
                      ? `${entry.newFingerprint} (new)`
                      : `${entry.oldFingerprint} -> ${entry.newFingerprint}`,
                ]),
              ),
            ];
      if (verification?.ok === true) {
        lines.push(colors.green(`hash chain intact (${verification.count} entries)`));
      }
      return lines.join("\n");
    },
  );
  if (verification !== undefined && !verification.ok) {
    throw new RekeyError(
      "STORE_CORRUPT",
      `The audit log's hash chain is broken at entry ${verification.brokenAt}: ${verification.reason}`,
      {
        hint: "The log was edited or truncated outside rekey; keep a copy of the store for inspection.",
        details: { brokenAt: verification.brokenAt, count: verification.count },
      },
    );
  }
}

import { agent, historyView, principalKey, RekeyError } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatTable } from "../output.js";

/** Which entries `rekey history` shows; each field left out shows all. */
interface HistoryFilter {
  profile?: string | undefined;
  /** A principal: "operator" (any operator account), "operator:12" or "agent:7". */
  principal?: string | undefined;
  /** Epoch milliseconds: entries at or after it. */
  since?: number | undefined;
  /** The most recent N entries (after the other filters). */
  limit?: number | undefined;
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

function invalid(message: string, hint: string): RekeyError {
  return new RekeyError("INVALID_INPUT", message, { hint });
}

/**
 * Reads `--principal`, `--since` and `--limit` (and the global `--profile`).
 * @throws RekeyError INVALID_INPUT for a value none of them takes
 */
function parseFilter(context: CommandContext, options: Record<string, unknown>): HistoryFilter {
  const filter: HistoryFilter = { profile: context.globals.profile };
  if (typeof options.principal === "string") {
    const text = options.principal.trim().toLowerCase();
    const agentId = /^(?:agent[: ]?)?(\d+)$/.exec(text)?.[1];
    if (text === "operator" || /^operator:[1-9]\d{0,9}$/.test(text)) filter.principal = text;
    else if (agentId !== undefined) filter.principal = principalKey(agent(agentId));
    else {
      throw invalid(
        `--principal ${JSON.stringify(options.principal)} is not a principal`,
        "Use operator (or operator:ID), or an agent id such as 7.",
      );
    }
  }
  if (typeof options.since === "string") {
    const relative = /^(\d+)([mhd])$/.exec(options.since);
    const since = relative
      ? context.deps.clock.now() - Number(relative[1]) * (UNIT_MS[relative[2] ?? ""] ?? 0)
      : Date.parse(options.since);
    if (!Number.isFinite(since)) {
      throw invalid(
        `--since ${JSON.stringify(options.since)} is not a time`,
        "Use a date or time (2026-12-01, 2026-12-01T09:00Z) or an age such as 90m, 24h or 7d.",
      );
    }
    filter.since = since;
  }
  if (typeof options.limit === "string") {
    if (!/^\d+$/.test(options.limit) || Number(options.limit) < 1) {
      throw invalid(`--limit ${JSON.stringify(options.limit)} is not a count`, "Use 1 or more.");
    }
    filter.limit = Number(options.limit);
  }
  return filter;
}

/** "operator" matches every operator account's entries ("operator:12"); anything else exactly. */
function matchesPrincipal(principal: string, wanted: string): boolean {
  return wanted === "operator"
    ? principal === "operator" || principal.startsWith("operator:")
    : principal === wanted;
}

function applyFilter<Entry extends { profile: string; principal: string; at: string }>(
  entries: Entry[],
  filter: HistoryFilter,
): Entry[] {
  const kept = entries.filter(
    (entry) =>
      (filter.profile === undefined || entry.profile === filter.profile) &&
      (filter.principal === undefined || matchesPrincipal(entry.principal, filter.principal)) &&
      (filter.since === undefined || Date.parse(entry.at) >= filter.since),
  );
  return filter.limit === undefined ? kept : kept.slice(-filter.limit);
}

/**
 * `rekey history [--verify] [--principal P] [--since T] [--limit N]`: the audit log, filtered
 * by profile (the global `--profile`), principal, time and count; `--verify` checks the whole
 * hash chain, whatever is shown.
 * @throws RekeyError INVALID_INPUT (a bad filter), STORE_CORRUPT when the chain is broken
 *   (after printing the log), STORE_UNAVAILABLE
 */
export async function runHistory(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const verify = options.verify === true;
  const filter = parseFilter(context, options);
  const { entries, verification } = await context.withRekey(async ({ rekey }) => ({
    entries: applyFilter(await rekey.history(), filter),
    verification: verify ? await rekey.verifyHistory() : undefined,
  }));
  const { colors } = context.output;
  context.output.result("history", historyView(entries, verification), () => {
    const lines =
      entries.length === 0
        ? ["The audit log is empty."]
        : [
            formatTable(
              ["seq", "at", "surface", "profile", "principal", "action", "outcome", "key"],
              entries.map((entry) => [
                String(entry.seq),
                context.output.time(entry.at),
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
  });
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

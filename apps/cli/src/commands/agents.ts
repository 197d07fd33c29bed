import { agent, agentListView, formatDuration, principalLabel, principalView } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatFields, formatTable } from "../output.js";
import { parseSats } from "./input.js";

/**
 * `rekey agents list`: the operator's agents with the store's fingerprints and cooldowns.
 * @throws RekeyError NOT_FOUND (no operator key), UNAUTHORIZED, FORBIDDEN, STORE_*, UPSTREAM_*
 */
export async function runAgentsList(context: CommandContext): Promise<void> {
  const agents = await context.withRekey(({ rekey }) => rekey.listAgents());
  const { colors } = context.output;
  context.output.result("agents list", agentListView(agents), () => {
    if (agents.length === 0) return "No agents yet (rekey agents create NAME).";
    return formatTable(
      ["id", "name", "balance", "active", "key", "cooldown"],
      agents.map((entry) => [
        String(entry.id),
        entry.name,
        `${entry.balanceSats} sats`,
        entry.isActive ? "yes" : "no",
        entry.hasKey ? (entry.fingerprint ?? "-") : colors.yellow("not held"),
        entry.cooldownRemainingSeconds > 0
          ? `${formatDuration(entry.cooldownRemainingSeconds)} left`
          : "none",
      ]),
    );
  });
}

/**
 * `rekey agents create NAME [--budget SATS]`: creates an agent and stores its key.
 * @throws RekeyError INVALID_INPUT (bad budget or name), NOT_FOUND (no operator key),
 *   FORBIDDEN, STORE_*, UPSTREAM_*
 */
export async function runAgentsCreate(
  context: CommandContext,
  name: string,
  options: Record<string, unknown>,
): Promise<void> {
  const budgetLimitSats =
    options.budget === undefined ? undefined : parseSats(options.budget, "--budget");
  const description = typeof options.description === "string" ? options.description : undefined;
  const created = await context.withRekey(({ rekey }) =>
    rekey.createAgent({
      name,
      ...(description === undefined ? {} : { description }),
      ...(budgetLimitSats === undefined ? {} : { budgetLimitSats }),
    }),
  );
  context.output.result(
    "agents create",
    {
      principal: principalView(agent(created.agentId)),
      label: principalLabel(agent(created.agentId)),
      agent_id: created.agentId,
      name: created.name,
      fingerprint: created.fingerprint,
    },
    () =>
      [
        `${context.output.colors.green("created")} agent ${created.agentId} "${created.name}"`,
        formatFields([
          ["key", `${created.fingerprint} (stored)`],
          ["budget", budgetLimitSats === undefined ? undefined : `${budgetLimitSats} sats`],
        ]),
      ].join("\n"),
  );
}

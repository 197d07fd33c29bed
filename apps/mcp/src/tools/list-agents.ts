import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { RekeyError } from "@rekey/core";
import { compact, toolResult } from "../render.js";
import { listAgentsOutput } from "../tool-schemas.js";
import type { ToolContext } from "./context.js";

/** Registers `list_agents` (read-only, operators). Failures become `isError` results. */
export function registerListAgents(server: McpServer, deps: ToolContext): void {
  server.registerTool(
    "list_agents",
    {
      title: "List agents",
      description:
        "List this operator's agents with their key fingerprints and withdrawal cooldowns. REQUIRES AN OPERATOR KEY. Use an agent_id from here with rotate_api_key or get_key_status.",
      outputSchema: listAgentsOutput,
      annotations: { title: "List agents", readOnlyHint: true, openWorldHint: true },
    },
    async () => {
      try {
        // The session acts as its active principal: an agent session is not an operator, even
        // if its profile also holds an operator key.
        const active = await deps.rekey.activePrincipal();
        if (active?.kind === "agent") {
          throw new RekeyError(
            "FORBIDDEN",
            `list_agents needs an operator key; this session is agent ${active.agentId}`,
          );
        }
        const agents = await deps.rekey.listAgents();
        const cooling = agents.filter((entry) => entry.cooldownRemainingSeconds > 0).length;
        return toolResult(
          `${agents.length} agent${agents.length === 1 ? "" : "s"}, ${cooling} in a withdrawal cooldown.`,
          {
            agents: agents.map((entry) =>
              compact({
                agent_id: entry.id,
                name: entry.name,
                balance_sats: entry.balanceSats,
                is_active: entry.isActive,
                has_key: entry.hasKey,
                fingerprint: entry.fingerprint,
                cooldown_until: entry.cooldownUntil,
                cooldown_remaining_seconds: entry.cooldownRemainingSeconds,
                last_rotated_at: entry.lastRotatedAt,
              }),
            ),
          },
        );
      } catch (error) {
        return deps.failed("list_agents", error);
      }
    },
  );
}

import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { agentListView, listAgentsAsSession } from "@rekey/core";
import { toolResult } from "../render.js";
import { listAgentsOutput, noInput } from "../tool-schemas.js";
import { refuseUnexpectedArguments } from "../unexpected-arguments.js";
import type { ToolContext } from "./context.js";

/** Registers `list_agents` (read-only, operators). Failures become `isError` results. */
export function registerListAgents(server: McpServer, deps: ToolContext): void {
  server.registerTool(
    "list_agents",
    {
      title: "List agents",
      description:
        "List this operator's agents with their key fingerprints and withdrawal cooldowns. REQUIRES AN OPERATOR KEY. Use an agent_id from here with rotate_api_key or get_key_status.",
      inputSchema: noInput,
      outputSchema: listAgentsOutput,
      annotations: { title: "List agents", readOnlyHint: true, openWorldHint: true },
    },
    async (args) => {
      try {
        refuseUnexpectedArguments(
          "list_agents",
          [],
          args,
          "Call list_agents with no arguments; get_key_status takes agent_id for one agent's key.",
        );
        // Core refuses an agent session (policy); this only formats the answer.
        const agents = await listAgentsAsSession(deps.rekey);
        const cooling = agents.filter((entry) => entry.cooldownRemainingSeconds > 0).length;
        return toolResult(
          `${agents.length} agent${agents.length === 1 ? "" : "s"}, ${cooling} in a withdrawal cooldown.`,
          agentListView(agents),
        );
      } catch (error) {
        return deps.failed("list_agents", error);
      }
    },
  );
}

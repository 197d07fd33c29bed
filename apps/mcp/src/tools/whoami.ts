import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { toolResult } from "../render.js";
import { whoamiOutput } from "../tool-schemas.js";
import type { ToolContext } from "./context.js";

/** Registers `whoami` (read-only). Failures become `isError` results. */
export function registerWhoami(server: McpServer, deps: ToolContext): void {
  server.registerTool(
    "whoami",
    {
      title: "Who am I",
      description:
        "Show who this session's key belongs to (operator or agent, id, name, balance) and the key's fingerprint. Asks the faucet, so it also proves the current key works.",
      outputSchema: whoamiOutput,
      annotations: { title: "Who am I", readOnlyHint: true, openWorldHint: true },
    },
    async () => {
      try {
        const identity = await deps.rekey.whoami();
        const label = identity.type === "operator" ? "operator" : `agent ${identity.id}`;
        return toolResult(
          `This session acts as ${label} ${JSON.stringify(identity.name)} with key ${identity.fingerprint}.`,
          {
            principal: label,
            type: identity.type,
            id: identity.id,
            name: identity.name,
            balance_sats: identity.balanceSats,
            fingerprint: identity.fingerprint,
            profile: deps.rekey.profileName,
            agent_count: identity.type === "operator" ? identity.agentCount : undefined,
            operator_id: identity.type === "agent" ? identity.operatorId : undefined,
            budget_limit_sats: identity.type === "agent" ? identity.budgetLimitSats : undefined,
          },
        );
      } catch (error) {
        return deps.failed("whoami", error);
      }
    },
  );
}

import { RekeyError } from "../errors.js";
import type { AgentStatus, Rekey } from "./types.js";

/**
 * The operator's agents, for a session that acts as its profile's active principal (an MCP
 * session): an agent session is not an operator, even when its profile also holds the
 * operator's key, so it is refused rather than answered with the operator's key.
 * @throws RekeyError FORBIDDEN (`operation: "list_agents"`, the session's principal) for an
 *   agent session; NOT_FOUND (`missing: "key"`) when no operator key is held; as `listAgents`.
 */
export async function listAgentsAsSession(
  rekey: Pick<Rekey, "activePrincipal" | "listAgents">,
): Promise<AgentStatus[]> {
  const active = await rekey.activePrincipal();
  if (active?.kind === "agent") {
    throw new RekeyError(
      "FORBIDDEN",
      `Listing agents needs an operator session; this session acts as agent ${active.agentId}`,
      {
        hint: "Use the operator's profile to list its agents.",
        details: { principal: active, operation: "list_agents" },
      },
    );
  }
  return rekey.listAgents();
}

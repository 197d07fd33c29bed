import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { identityView } from "@rekey/core";
import { toolResult } from "../render.js";
import { noInput, whoamiOutput } from "../tool-schemas.js";
import { refuseUnexpectedArguments } from "../unexpected-arguments.js";
import type { ToolContext } from "./context.js";

/** Registers `whoami` (read-only). Failures become `isError` results. */
export function registerWhoami(server: McpServer, deps: ToolContext): void {
  server.registerTool(
    "whoami",
    {
      title: "Who am I",
      description:
        "Show who this session's key belongs to (operator or agent, id, name, balance) and the key's fingerprint. Asks the faucet, so it also proves the current key works.",
      inputSchema: noInput,
      outputSchema: whoamiOutput,
      annotations: { title: "Who am I", readOnlyHint: true, openWorldHint: true },
    },
    async (args) => {
      try {
        refuseUnexpectedArguments(
          "whoami",
          [],
          args,
          "Call whoami with no arguments: it answers for this session's key; get_key_status takes agent_id for an agent's key.",
        );
        const identity = await deps.rekey.whoami();
        const view = identityView(identity);
        return toolResult(
          `This session acts as ${view.label} ${JSON.stringify(identity.name)} with key ${identity.fingerprint}.`,
          { ...view, profile: deps.rekey.profileName },
        );
      } catch (error) {
        return deps.failed("whoami", error);
      }
    },
  );
}

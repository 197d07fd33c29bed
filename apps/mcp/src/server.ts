import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Rekey } from "@rekey/core";
import { toolErrorFacts, toToolError } from "./error-result.js";
import { answerMalformedToolCalls } from "./invalid-params.js";
import type { ToolContext } from "./tools/context.js";
import { registerGetKeyStatus } from "./tools/get-key-status.js";
import { registerListAgents } from "./tools/list-agents.js";
import { registerRotateApiKey } from "./tools/rotate-api-key.js";
import { registerWhoami } from "./tools/whoami.js";

/** What the MCP server is built from; the binary builds the real ones. */
export interface McpServerDeps {
  /** Bound to one store, one profile, surface "mcp". The server never closes it. */
  rekey: Rekey;
  /** Put the raw new key in `rotate_api_key` results (`new_api_key`): the old, unsafe behaviour. */
  revealKeys: boolean;
  /** Where diagnostics go (stderr in the binary; never stdout, which carries the protocol). */
  log?: (line: string) => void;
  /** The version announced in `initialize`. */
  version?: string;
}

/**
 * Builds the rekey MCP server with its four tools: `rotate_api_key`, `get_key_status`,
 * `list_agents`, `whoami`. Connect it to any transport. Tools never throw: every core error
 * (any `ErrorCode`) comes back as an `isError` result with a hint.
 */
export function createMcpServer(deps: McpServerDeps): McpServer {
  const log = deps.log ?? (() => {});
  const server = new McpServer(
    { name: "rekey", title: "rekey", version: deps.version ?? "0.0.0-dev" },
    {
      capabilities: { tools: {} },
      instructions:
        "rekey rotates Lightning Faucet API keys safely. Keys never appear in results: use fingerprints. Call get_key_status before rotate_api_key; a rotation inside the withdrawal cooldown is refused.",
    },
  );
  const context: ToolContext = {
    rekey: deps.rekey,
    revealKeys: deps.revealKeys,
    log,
    failed: (tool, error) => {
      const facts = toolErrorFacts(error);
      log(`${tool}: ${facts.code}: ${facts.message}`);
      return toToolError(error);
    },
  };
  registerRotateApiKey(server, context);
  registerGetKeyStatus(server, context);
  registerListAgents(server, context);
  registerWhoami(server, context);
  answerMalformedToolCalls(server);
  return server;
}

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ErrorCode, type JSONRPCRequest, McpError } from "@modelcontextprotocol/sdk/types.js";
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
  /** Put the raw new key in `rotate_api_key` results (`api_key`): the old, unsafe behaviour. */
  revealKeys: boolean;
  /** Where diagnostics go (stderr in the binary; never stdout, which carries the protocol). */
  log?: (line: string) => void;
  /** The version announced in `initialize`. */
  version?: string;
  /** The time errors are read at (ms since the epoch); default the system clock. */
  now?: () => number;
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
      const facts = toolErrorFacts(error, (deps.now ?? Date.now)());
      log(`${tool}: ${facts.code}: ${facts.message}`);
      return toToolError(facts);
    },
  };
  registerRotateApiKey(server, context);
  registerGetKeyStatus(server, context);
  registerListAgents(server, context);
  registerWhoami(server, context);
  answerMalformedToolCalls(server);
  // The SDK advertises `tools.listChanged: true` as soon as a tool is registered; these four
  // never change, so say so (capabilities merge: false replaces true).
  server.server.registerCapabilities({ tools: { listChanged: false } });
  refuseUnknownTools(server, new Set(TOOL_NAMES));
  return server;
}

/** The tools every rekey MCP server has, and nothing else. */
export const TOOL_NAMES = ["rotate_api_key", "get_key_status", "list_agents", "whoami"] as const;

type RawRequestHandler = (request: JSONRPCRequest, extra: unknown) => Promise<unknown>;

/**
 * The MCP spec answers a call to an unknown tool with a JSON-RPC error (-32602, "Unknown tool"),
 * but the SDK's McpServer (1.32) turns it into an `isError` result, which a host shows the
 * model as if the tool had run. The SDK offers no hook for it, so the registered `tools/call`
 * handler is wrapped; server.test.ts fails if a new SDK moves it.
 */
function refuseUnknownTools(server: McpServer, known: ReadonlySet<string>): void {
  const handlers = (
    server.server as unknown as { _requestHandlers?: Map<string, RawRequestHandler> }
  )._requestHandlers;
  const callTool = handlers?.get("tools/call");
  if (handlers === undefined || callTool === undefined) {
    throw new Error("The MCP SDK keeps no tools/call handler where rekey-mcp expects it");
  }
  handlers.set("tools/call", async (request, extra) => {
    const name = (request.params as { name?: unknown } | undefined)?.name;
    if (typeof name !== "string" || !known.has(name)) {
      throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${String(name)}`);
    }
    return callTool(request, extra);
  });
}

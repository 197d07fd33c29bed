import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  isJSONRPCRequest,
  type JSONRPCMessage,
} from "@modelcontextprotocol/sdk/types.js";

/**
 * Answers a `tools/call` whose params do not parse (`arguments` a string, a number, an array,
 * null; no tool name) with -32602 "Invalid params", as JSON-RPC asks. The SDK parses the request
 * before its own check and answers such a call with -32603 "Internal error", which tells the
 * client the server failed when the request was wrong.
 *
 * It filters the transport's incoming messages once the server is connected: the SDK offers no
 * hook between a request's arrival and its parse. Every other message passes untouched.
 */
export function answerMalformedToolCalls(server: McpServer): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport) => {
    await connect(transport);
    const deliver = transport.onmessage;
    transport.onmessage = (message: JSONRPCMessage, extra) => {
      if (isJSONRPCRequest(message) && message.method === "tools/call") {
        const parsed = CallToolRequestSchema.safeParse(message);
        if (!parsed.success) {
          const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join(".")))];
          void transport
            .send(
              {
                jsonrpc: "2.0",
                id: message.id,
                error: {
                  code: ErrorCode.InvalidParams,
                  message: `Invalid params: ${fields.join(", ")} (tools/call needs a tool name and an arguments object)`,
                },
              },
              { relatedRequestId: message.id },
            )
            .catch(() => undefined);
          return;
        }
      }
      deliver?.(message, extra);
    };
  };
}

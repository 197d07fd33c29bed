import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Rekey } from "@rekey/core";

/** What every tool handler gets from `createMcpServer`. */
export interface ToolContext {
  rekey: Rekey;
  revealKeys: boolean;
  /** Diagnostics (stderr in the binary). Never given a key. */
  log: (line: string) => void;
  /** Logs a failure and turns it into the `isError` result the model sees. */
  failed: (tool: string, error: unknown) => CallToolResult;
}

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

type Facts = Record<string, unknown>;

/** Drops undefined fields: structured content must match the output schema exactly. */
export function compact<T extends Facts>(facts: T): T {
  return Object.fromEntries(Object.entries(facts).filter(([, value]) => value !== undefined)) as T;
}

/**
 * Names come from whoever named the agent and reach the model's context: they are always
 * quoted, as is any text with a character outside printable ASCII, so no value can start a
 * line of its own or pass for an instruction.
 */
function line(name: string, value: unknown): string {
  const quoted =
    typeof value === "object" ||
    (typeof value === "string" && (name === "name" || /[^\x20-\x7e]/.test(value)));
  return `${name}: ${quoted ? JSON.stringify(value) : String(value)}`;
}

/**
 * A successful tool result: the structured facts, and a text rendering of the same facts for
 * hosts that show only text (the MCP spec asks for both).
 */
export function toolResult<T extends Facts>(
  headline: string,
  facts: T,
): CallToolResult & { structuredContent: T } {
  const structured = compact(facts);
  const lines = Object.entries(structured)
    .filter(([name]) => name !== "message")
    .map(([name, value]) => line(name, value));
  return {
    structuredContent: structured,
    content: [{ type: "text", text: [headline, ...lines].join("\n") }],
  };
}

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { type ErrorView, errorFacts, errorView } from "@rekey/core";

/** The key-free facts of an error for a model: core's error vocabulary, hint for a model. */
export function toolErrorFacts(thrown: unknown, now: number): ErrorView {
  return errorView(errorFacts(thrown, now, { audience: "model" }));
}

/**
 * Turns anything thrown by core into an `isError` tool result: one text block, read by a model
 * as by a person. Its first line is `CODE: message`, then `hint: ...` and one `name: value`
 * line per other fact (objects as JSON), the layout of a successful result's text. No
 * `structuredContent`: the SDK client validates it against the tool's success output schema,
 * which an error does not match.
 */
export function toToolError(facts: ErrorView): CallToolResult {
  const { code, message, hint, ...rest } = facts;
  const lines = [
    `${code}: ${message}`,
    ...(hint === undefined ? [] : [`hint: ${hint}`]),
    ...Object.entries(rest).map(
      ([name, value]) => `${name}: ${typeof value === "object" ? JSON.stringify(value) : value}`,
    ),
  ];
  return { isError: true, content: [{ type: "text", text: lines.join("\n") }] };
}

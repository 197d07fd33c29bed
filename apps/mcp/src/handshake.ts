// The answers to a host's handshake (`initialize`, `tools/list`, `ping`), precomputed at build
// time from the real server (handshake-data.ts, run by build.mjs), so rekey-mcp can answer them
// before it loads the MCP SDK, zod and core. Plain data and plain functions: this module is in
// the start-up path and imports nothing.

/** What the SDK's server answers to the handshake, captured from createMcpServer. */
export interface Handshake {
  /** Protocol versions the SDK speaks; an unknown request gets `latestProtocolVersion`. */
  supportedProtocolVersions: string[];
  latestProtocolVersion: string;
  /** The `initialize` result without its `protocolVersion`. */
  initialize: Record<string, unknown>;
  /** The `tools/list` result. */
  toolsList: Record<string, unknown>;
}

/** A JSON-RPC message as read from one line: only the fields looked at here. */
export interface IncomingMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

export type HandshakeAnswer =
  | { kind: "reply"; result: Record<string, unknown>; id: string | number }
  | { kind: "initialized" };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is string | number {
  return typeof value === "string" || (typeof value === "number" && Number.isInteger(value));
}

/** The client's half of `initialize`, checked as far as the SDK checks it; else undefined. */
function requestedVersion(params: unknown): string | undefined {
  if (!isObject(params) || typeof params.protocolVersion !== "string") return undefined;
  if (!isObject(params.capabilities)) return undefined;
  const client = params.clientInfo;
  if (!isObject(client) || typeof client.name !== "string" || typeof client.version !== "string") {
    return undefined;
  }
  return params.protocolVersion;
}

/**
 * The answer the SDK's server would give to `message`, when it is a well-formed handshake
 * message; `undefined` for anything else (a tool call, a malformed request, ...), which the
 * SDK must see. `initialized` marks the notification that completes the handshake.
 */
export function answerHandshake(
  handshake: Handshake,
  message: IncomingMessage,
): HandshakeAnswer | undefined {
  if (message.jsonrpc !== "2.0" || typeof message.method !== "string") return undefined;
  if (message.id === undefined) {
    return message.method === "notifications/initialized" &&
      (message.params === undefined || isObject(message.params))
      ? { kind: "initialized" }
      : undefined;
  }
  if (!isId(message.id)) return undefined;
  const { id } = message;
  switch (message.method) {
    case "initialize": {
      const requested = requestedVersion(message.params);
      if (requested === undefined) return undefined;
      const protocolVersion = handshake.supportedProtocolVersions.includes(requested)
        ? requested
        : handshake.latestProtocolVersion;
      return { kind: "reply", id, result: { protocolVersion, ...handshake.initialize } };
    }
    case "tools/list":
      return message.params === undefined || isObject(message.params)
        ? { kind: "reply", id, result: handshake.toolsList }
        : undefined;
    case "ping":
      return message.params === undefined || isObject(message.params)
        ? { kind: "reply", id, result: {} }
        : undefined;
    default:
      return undefined;
  }
}

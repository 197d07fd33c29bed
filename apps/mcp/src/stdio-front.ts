import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { answerHandshake, type Handshake, type IncomingMessage } from "./handshake.js";

// A host spawns rekey-mcp per session and waits for `initialize` and `tools/list` before it
// shows the tools. Loading the MCP SDK, zod and core takes most of a cold start, so the front
// answers those from the build's precomputed handshake (handshake.ts) and starts the real
// server (main.ts) when the session goes quiet after them, or at once for anything else (a
// tool call). The server then takes the session over as an SDK transport: it is told the
// `initialize` it missed (its reply is dropped: the host has it) and gets every later message.
// A session that ends within the handshake (a host probing for the tool list) never loads it.

/** Quiet this long after the last answer (or the start) starts the real server. */
const IDLE_MS = 50;
// As the SDK's stdio transport: a line longer than this is dropped.
const MAX_BUFFER_BYTES = 10 * 1024 * 1024;

/** The stdio session as rekey-mcp's front answers it until the server takes over. */
export interface StdioFront {
  /**
   * The session as an SDK transport, for `server.connect()`. `deserialize` parses and checks
   * one line as the SDK's own stdio transport does.
   */
  handOver(deserialize: (line: string) => JSONRPCMessage): Transport;
  /**
   * Calls `listener` (once, on a later turn) when stdin has ended and the server has answered
   * every request it was handed: the host closed its end, and nothing it asked for is left.
   */
  onInputEnd(listener: () => void): void;
}

/**
 * True when argv leaves nothing to check before answering: no arguments, or only the
 * profile and principal to act as. Everything else (--http, --help, --store, a typo) goes
 * through the full option parser first, so its errors come before any answer, as always.
 */
export function frontCanServe(argv: readonly string[]): boolean {
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? "";
    if (/^--(profile|as)=./.test(arg)) continue;
    if ((arg === "--profile" || arg === "--as") && !(argv[index + 1] ?? "-").startsWith("-")) {
      index += 1;
      continue;
    }
    return false;
  }
  return true;
}

/**
 * Reads the session from stdin and answers the handshake; calls `load` (once) when the real
 * server is needed. Before the server has taken over, the end of stdin ends the process: the
 * host closed a session that never called a tool.
 */
export function startStdioFront(handshake: Handshake, load: () => void): StdioFront {
  const stdin = process.stdin;
  let buffer: Buffer | undefined;
  /** Lines for the server, in order, while it loads. */
  const waiting: string[] = [];
  let replayInitialize: string | undefined;
  let replayInitialized: string | undefined;
  let transport: Transport | undefined;
  let deserialize: ((line: string) => JSONRPCMessage) | undefined;
  let dropReplyTo: string | number | undefined;
  let loading = false;
  // Requests handed to the server and not answered yet, by id.
  const unanswered = new Set<unknown>();
  let inputEnded = false;
  let endListener: (() => void) | undefined;
  const maybeEnd = () => {
    if (!inputEnded || transport === undefined || unanswered.size > 0) return;
    const listener = endListener;
    endListener = undefined;
    if (listener !== undefined) setImmediate(listener);
  };

  const startLoading = () => {
    if (loading) return;
    loading = true;
    clearTimeout(idle);
    load();
  };
  let idle = setTimeout(startLoading, IDLE_MS);

  const write = (message: unknown) =>
    new Promise<void>((resolve) => {
      if (process.stdout.write(`${JSON.stringify(message)}\n`)) resolve();
      else process.stdout.once("drain", resolve);
    });

  const deliver = (line: string) => {
    if (transport === undefined || deserialize === undefined) return;
    let message: JSONRPCMessage;
    try {
      message = deserialize(line);
    } catch (error) {
      transport.onerror?.(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if ("method" in message && "id" in message) unanswered.add(message.id);
    transport.onmessage?.(message);
  };

  const onLine = (line: string) => {
    if (transport !== undefined) return deliver(line);
    if (!loading) {
      let message: IncomingMessage | undefined;
      try {
        message = JSON.parse(line) as IncomingMessage;
      } catch {
        message = undefined;
      }
      const answer =
        typeof message === "object" && message !== null
          ? answerHandshake(handshake, message)
          : undefined;
      if (answer?.kind === "initialized") {
        replayInitialized = line;
        return;
      }
      if (answer?.kind === "reply") {
        if (message?.method === "initialize") {
          replayInitialize = line;
          dropReplyTo = answer.id;
        }
        void write({ jsonrpc: "2.0", id: answer.id, result: answer.result });
        clearTimeout(idle);
        idle = setTimeout(startLoading, IDLE_MS);
        return;
      }
    }
    waiting.push(line);
    startLoading();
  };

  const onData = (chunk: Buffer) => {
    buffer = buffer === undefined ? chunk : Buffer.concat([buffer, chunk]);
    for (let end = buffer.indexOf(10); end !== -1; end = buffer.indexOf(10)) {
      const line = buffer.toString("utf8", 0, end).replace(/\r$/, "");
      buffer = buffer.subarray(end + 1);
      onLine(line);
    }
    if (buffer.length > MAX_BUFFER_BYTES) buffer = undefined;
  };
  const onEnd = () => {
    // A host that only probed the handshake: nothing is waiting for the server.
    if (transport === undefined && waiting.length === 0) process.exit(0);
    // Lines (a tool call) sent before the end are answered first: a host that writes its
    // requests and closes stdin (a pipe) still gets every reply.
    inputEnded = true;
    maybeEnd();
  };
  stdin.on("data", onData);
  stdin.once("end", onEnd);

  return {
    handOver(deserializeLine) {
      deserialize = deserializeLine;
      const handedOver: Transport = {
        async start() {
          transport = handedOver;
          clearTimeout(idle);
          for (const line of [replayInitialize, replayInitialized, ...waiting.splice(0)]) {
            if (line !== undefined) deliver(line);
          }
          maybeEnd();
        },
        async send(message) {
          const answers = "id" in message && !("method" in message);
          if (answers) unanswered.delete(message.id);
          if (
            dropReplyTo !== undefined &&
            "id" in message &&
            message.id === dropReplyTo &&
            !("method" in message)
          ) {
            // The reply to the replayed `initialize`: the host already has the front's.
            dropReplyTo = undefined;
            maybeEnd();
            return;
          }
          await write(message);
          if (answers) maybeEnd();
        },
        async close() {
          stdin.off("data", onData);
          stdin.off("end", onEnd);
          stdin.pause();
          handedOver.onclose?.();
        },
      };
      return handedOver;
    },
    onInputEnd(listener) {
      endListener = listener;
      maybeEnd();
    },
  };
}

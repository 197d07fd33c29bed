import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import {
  type JSONRPCMessage,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import { createRekey, openCredentialStore } from "@rekey/core";
import type { Handshake } from "./handshake.js";
import { createMcpServer } from "./server.js";

/**
 * Asks the real server (createMcpServer, through the SDK, on a memory store it never reads)
 * the handshake questions and returns its raw answers: what build.mjs bakes into dist/bin.js,
 * and what handshake.test.ts compares the precomputed answers against.
 */
export async function describeHandshake(version: string): Promise<Handshake> {
  const answers = await askServer(version, [
    { jsonrpc: "2.0", id: 1, method: "initialize", params: initializeParams("2024-11-05") },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
  ]);
  const { protocolVersion: _negotiated, ...initialize } = answers[0] ?? {};
  return {
    supportedProtocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
    latestProtocolVersion: LATEST_PROTOCOL_VERSION,
    initialize,
    toolsList: answers[1] ?? {},
  };
}

/** `initialize` params as a host sends them, asking for `protocolVersion`. */
export function initializeParams(protocolVersion: string): Record<string, unknown> {
  return {
    protocolVersion,
    capabilities: {},
    clientInfo: { name: "rekey-handshake", version: "0.0.0" },
  };
}

/** Sends `requests` in turn to a fresh createMcpServer and returns each raw `result`. */
export async function askServer(
  version: string,
  requests: JSONRPCMessage[],
): Promise<Array<Record<string, unknown> | undefined>> {
  const store = await openCredentialStore({ spec: "memory", env: {} });
  const rekey = createRekey({ store, surface: "mcp", env: {} });
  const server = createMcpServer({ rekey, revealKeys: false, version });
  const [client, serverSide] = InMemoryTransport.createLinkedPair();
  const replies = new Map<unknown, Record<string, unknown> | undefined>();
  client.onmessage = (message) => {
    if ("id" in message) {
      replies.set(message.id, "result" in message ? message.result : undefined);
    }
  };
  await server.connect(serverSide);
  await client.start();
  try {
    const results: Array<Record<string, unknown> | undefined> = [];
    for (const request of requests) {
      await client.send(request);
      const id = "id" in request ? request.id : undefined;
      if (id === undefined) continue;
      // The in-memory transport delivers in a later tick; wait for this request's reply.
      for (let tick = 0; tick < 1000 && !replies.has(id); tick += 1) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      results.push(replies.get(id));
    }
    return results;
  } finally {
    await server.close();
    await rekey.close();
    await store.close();
  }
}

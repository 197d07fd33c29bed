import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isLoopbackHost } from "./options.js";

/** What `startHttpServer` needs. */
export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Required from clients as `Authorization: Bearer <token>` when set. */
  bearerToken?: string | undefined;
  /** A fresh MCP server per request: the HTTP mode is stateless. */
  createServer: () => McpServer;
  log: (line: string) => void;
}

/** A running HTTP endpoint. */
export interface RunningHttpServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:4100/mcp. */
  url: string;
  close: () => Promise<void>;
}

function sameToken(header: string | undefined, expected: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1].trim());
  const wanted = Buffer.from(expected);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

function reply(
  response: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

/**
 * Serves MCP over Streamable HTTP at `/mcp`, stateless (each POST is answered on its own), with
 * DNS-rebinding protection on loopback and a bearer token check when one is configured.
 * @throws Error when the port cannot be bound (EADDRINUSE, EACCES).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const loopback = isLoopbackHost(options.host);
  let allowedHosts: string[] = [];

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/mcp") return reply(response, 404, "Not found: the MCP endpoint is /mcp");
    if (
      options.bearerToken !== undefined &&
      !sameToken(request.headers.authorization, options.bearerToken)
    ) {
      return reply(response, 401, "Unauthorized", { "www-authenticate": "Bearer" });
    }
    if (request.method !== "POST") {
      return reply(response, 405, "Method not allowed: this endpoint is stateless, use POST", {
        allow: "POST",
      });
    }
    const server = options.createServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      // A web page must not reach a loopback server through a rebound DNS name.
      enableDnsRebindingProtection: loopback,
      allowedHosts,
    });
    response.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(request, response);
  };

  const httpServer = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.log(`http: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) reply(response, 500, "Internal error");
      else response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(options.port, options.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  allowedHosts = [
    `127.0.0.1:${port}`,
    `localhost:${port}`,
    `[::1]:${port}`,
    `${options.host}:${port}`,
  ];
  const hostForUrl =
    options.host.includes(":") && !options.host.startsWith("[")
      ? `[${options.host}]`
      : options.host;
  return {
    url: `http://${hostForUrl}:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        httpServer.closeAllConnections();
        httpServer.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

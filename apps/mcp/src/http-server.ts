import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  applyServerLimits,
  DEFAULT_SERVER_LIMITS,
  isLoopbackHost,
  type ServerLimits,
  serverCreationOptions,
} from "@rekey/core";

/** What `startHttpServer` needs. */
export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Required from every client as `Authorization: Bearer <token>`. Always set: loopback does not
   * keep out the machine's other users, and any of them could otherwise rotate keys.
   */
  bearerToken: string;
  /** Serve HTTPS with this certificate and key. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** Timeouts and the connection cap; default `DEFAULT_SERVER_LIMITS` from core. */
  limits?: Partial<ServerLimits> | undefined;
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

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Compares digests, which all have one length: the time taken says nothing of the token. */
function sameToken(header: string | undefined, expectedDigest: Buffer): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  const given = digest(match?.[1]?.trim() ?? "");
  return timingSafeEqual(given, expectedDigest) && match?.[1] !== undefined;
}

/**
 * A browser always sends `Origin` with a cross-site POST: a page may call this server only from
 * the server's own origin. Clients that are not browsers send none.
 */
function originAllowed(origin: string | undefined, allowedOrigins: ReadonlySet<string>): boolean {
  return origin === undefined || allowedOrigins.has(origin.toLowerCase());
}

function reply(
  response: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  // Every such answer comes before the request body is read: the connection is closed rather
  // than left for the next request to be parsed from the middle of the unread body.
  response.writeHead(status, {
    "content-type": "application/json",
    connection: "close",
    ...headers,
  });
  response.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

/**
 * Serves MCP over Streamable HTTP at `/mcp`, stateless (each POST is answered on its own), with
 * a bearer token check, `Origin` validation (the transport spec's MUST), DNS-rebinding
 * protection on loopback, timeouts and a connection cap.
 * @throws Error when the port cannot be bound (EADDRINUSE, EACCES).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const loopback = isLoopbackHost(options.host);
  const scheme = options.tls === undefined ? "http" : "https";
  const tokenDigest = digest(options.bearerToken);
  let allowedHosts: string[] = [];
  let allowedOrigins = new Set<string>();

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/mcp") return reply(response, 404, "Not found: the MCP endpoint is /mcp");
    if (!originAllowed(request.headers.origin, allowedOrigins)) {
      return reply(response, 403, "Forbidden: this Origin may not call the server");
    }
    if (!sameToken(request.headers.authorization, tokenDigest)) {
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

  const listener = (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      options.log(`http: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) reply(response, 500, "Internal error");
      else response.end();
    });
  };
  const limits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
  const httpServer =
    options.tls === undefined
      ? createServer(serverCreationOptions(limits), listener)
      : createHttpsServer({ ...serverCreationOptions(limits), ...options.tls }, listener);
  applyServerLimits(httpServer, limits);
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
  allowedOrigins = new Set(allowedHosts.map((host) => `${scheme}://${host}`.toLowerCase()));
  const hostForUrl =
    options.host.includes(":") && !options.host.startsWith("[")
      ? `[${options.host}]`
      : options.host;
  return {
    url: `${scheme}://${hostForUrl}:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        httpServer.closeAllConnections();
        httpServer.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

import type { Server } from "node:http";

/**
 * How long a client may take and how many may connect at once, for the two servers rekey runs
 * (`rekey-http`, `rekey-mcp --http`). Node's defaults let an idle or slow-header socket live
 * 72-78 s and a slow body about 5 minutes, with no cap on their number: a few hundred such
 * sockets used up the file descriptors a rotation in flight needed to store its new key.
 */
export interface ServerLimits {
  /** Time to receive a request's headers, counted from the connection or the previous request. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (the response may take longer). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number;
  /** How often node looks for connections past the two timeouts above. */
  checkIntervalMs: number;
  /**
   * Connections served at once; more are closed on accept. Keep it well below `ulimit -n`: the
   * rest are the store's (credential file, locks, audit log, a PostgreSQL pool).
   */
  maxConnections: number;
}

/** The limits both servers use unless configured otherwise. */
export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
  maxConnections: 128,
});

/**
 * The options `http.createServer` / `https.createServer` take at creation (the check interval
 * cannot be changed later). Pass them to the server's constructor, then {@link applyServerLimits}.
 */
export function serverCreationOptions(limits: ServerLimits): {
  connectionsCheckingInterval: number;
  headersTimeout: number;
  requestTimeout: number;
} {
  return {
    connectionsCheckingInterval: limits.checkIntervalMs,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
  };
}

/** Sets the limits a node server takes after creation. Throws nothing. */
export function applyServerLimits(server: Server, limits: ServerLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
}

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { requestIdFrom } from "../request-id.js";
import type { StatusBodyCache } from "../status-cache.js";
import type { AuthenticatedToken } from "../tokens.js";

/**
 * Answers a request straight on node's objects and returns true, or returns false and leaves
 * it untouched for the Hono app.
 */
export type PolledFastPath = (incoming: IncomingMessage, outgoing: ServerResponse) => boolean;

/**
 * The successful polls of `GET /v1/status` and `GET /healthz`, answered before @hono/node-server
 * builds a request, a context and a middleware chain for them. Profiled under load, that
 * framework path (request object, abort wiring, context, compose's promises, the response
 * object and its conversion back to node headers) cost more CPU than everything the status
 * route itself does, and monitors and load balancers poll these two routes most.
 *
 * It answers only what the app would answer with the same bytes and the same headers: a GET of
 * exactly `/healthz`, or of exactly `/v1/status` (no query) with a known token that has the
 * "status" scope and no principals list while the status cache holds a body (see
 * status-cache.ts), on a request without a body, when the request's log line would not be
 * written (below debug). Everything else (a 401, a first poll that reads the store, a debug log
 * level, a restricted token) goes through the app unchanged. Throws nothing.
 */
export function createPolledFastPath(options: {
  verifyToken: (authorization: string | undefined) => AuthenticatedToken | undefined;
  statusBodies: StatusBodyCache;
  logger: Logger;
  /** The serialised `GET /healthz` body. */
  healthyText: string;
}): PolledFastPath {
  const { verifyToken, statusBodies, logger, healthyText } = options;
  return (incoming, outgoing) => {
    if (incoming.method !== "GET") return false;
    const url = incoming.url;
    const isStatus = url === "/v1/status";
    if (!isStatus && url !== "/healthz") return false;
    const headers = incoming.headers;
    // A body (even on a GET) takes the app's path, which knows what to do with one.
    if (headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined) {
      return false;
    }
    // At debug a successful poll is logged: the app writes that line.
    if (logger.isLevelEnabled("debug")) return false;
    let body = healthyText;
    if (isStatus) {
      const token = verifyToken(headers.authorization);
      if (token === undefined || token.restricted || !token.scopes.has("status")) return false;
      const cached = statusBodies.get("");
      if (cached === undefined) return false;
      body = cached;
    }
    const offeredId = headers["x-request-id"];
    const requestId = requestIdFrom(Array.isArray(offeredId) ? offeredId.join(", ") : offeredId);
    // The headers the app's JSON responses carry (see http-env.ts), in the same order.
    outgoing.writeHead(
      200,
      isStatus
        ? {
            "content-type": "application/json",
            "cache-control": "no-store",
            "x-request-id": requestId,
            "Content-Length": Buffer.byteLength(body),
          }
        : {
            "content-type": "application/json",
            "x-request-id": requestId,
            "Content-Length": Buffer.byteLength(body),
          },
    );
    outgoing.end(body);
    return true;
  };
}

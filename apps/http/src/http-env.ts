import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import type { AuthenticatedToken } from "./tokens.js";

/** What every middleware and handler of the app sees on Hono's context. */
export type AppEnv = {
  // Set by @hono/node-server; absent when the app is called as a function (tests).
  Bindings: { incoming?: IncomingMessage } | undefined;
  Variables: {
    requestId: string;
    token: AuthenticatedToken | undefined;
    errorCode: string | undefined;
  };
};

/** The part of the context a response builder needs. */
export type RequestIdContext = { get(key: "requestId"): string };

/**
 * A request header. Under @hono/node-server it comes from node's own parsed headers: the first
 * `c.req.header()` call builds a fetch `Headers` from all raw headers, which costs more than
 * everything else this app does with headers. (For a repeated Authorization header node keeps
 * the first, as every node:http server does.)
 */
export function requestHeader(c: Context<AppEnv>, name: string): string | undefined {
  const incoming = c.env?.incoming;
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** True when the request came with a body (or announced one), read or not. */
export function hasBody(c: Context<AppEnv>): boolean {
  const length = requestHeader(c, "content-length");
  return (
    (length !== undefined && length !== "0") || requestHeader(c, "transfer-encoding") !== undefined
  );
}

/**
 * A JSON response with its headers in one plain object. @hono/node-server writes such a
 * response straight to the socket; `c.header()` or several headers through `c.json` would build
 * a fetch `Headers` object first, which costs a few microseconds per request.
 */
export function jsonResponse(
  body: unknown,
  status: number,
  headers: Record<string, string>,
): Response {
  return jsonTextResponse(JSON.stringify(body), status, headers);
}

/** {@link jsonResponse} for a body already serialised. */
export function jsonTextResponse(
  text: string,
  status: number,
  headers: Record<string, string>,
): Response {
  return new Response(text, {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

// Every response names its request id in X-Request-Id: problem responses through
// `problemResponse`, JSON through these headers.
export const publicHeaders = (c: RequestIdContext) => ({ "x-request-id": c.get("requestId") });

// Status, agents and keys change with every rotation: nothing under /v1 may be cached.
export const v1Headers = (c: RequestIdContext) => ({
  "cache-control": "no-store",
  "x-request-id": c.get("requestId"),
});

import { performance } from "node:perf_hooks";
import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import type { Logger } from "pino";
import { type AppEnv, hasBody, requestHeader } from "../http-env.js";
import { requestIdFrom } from "../request-id.js";
import { unknownQueryError } from "../validation.js";
import type { Auth } from "./auth.js";
import type { ProblemRenderer } from "./problems.js";
import { logRequest } from "./request-log.js";

/**
 * Every request: its id (request-id.ts), the bearer token for routes under /v1 (auth.ts), the
 * refusal of query parameters its route does not take (validation.ts), and one log line
 * (request-log.ts). One middleware rather than one per concern: each Hono
 * middleware layer costs every request a promise and its microtasks (about 2 µs in process,
 * twice that in the loaded server), and monitors poll /v1/status.
 */
export function createRequestMiddleware(options: {
  auth: Auth;
  logger: Logger;
  problem: ProblemRenderer;
  /** Offered, not imposed: once a token has the "metrics" scope, /metrics needs one. */
  metricsNeedToken: boolean;
}): MiddlewareHandler<AppEnv> {
  const { auth, logger, problem, metricsNeedToken } = options;
  return createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    c.set("requestId", requestIdFrom(requestHeader(c, "x-request-id")));
    const path = c.req.path;
    const authenticated =
      path.startsWith("/v1/") || (metricsNeedToken && path === "/metrics")
        ? auth.authenticate(c)
        : undefined;
    // Most requests (every status poll) carry no query: only one that does is checked.
    const badQuery = c.req.url.includes("?") ? unknownQueryError(c) : undefined;
    if (authenticated instanceof Response) {
      c.res = authenticated;
    } else if (badQuery !== undefined) {
      c.set("errorCode", badQuery.code);
      c.res = problem(badQuery, c);
    } else {
      c.set("token", authenticated);
      await next();
    }
    const status = c.res.status;
    // A refused request may leave its body unread on the socket (a 413 answers before reading
    // it, a 401 never reads it), and the next request on a kept-alive connection would be
    // parsed from the middle of that body. Such a connection is closed after the answer.
    if (status >= 400 && hasBody(c)) c.res.headers.set("connection", "close");
    const route = routePath(c, -1) || path;
    logRequest(logger, status, route, () => ({
      request_id: c.get("requestId"),
      method: c.req.method,
      route,
      status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      token_name: c.get("token")?.name,
      code: c.get("errorCode"),
    }));
  });
}

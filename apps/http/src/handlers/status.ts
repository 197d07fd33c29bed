import type { OpenAPIHono } from "@hono/zod-openapi";
import { agent, type Rekey } from "@rekey/core";
import type { Context } from "hono";
import { type AppEnv, jsonTextResponse, v1Headers } from "../http-env.js";
import type { HttpMetrics } from "../metrics.js";
import type { Auth } from "../middleware/auth.js";
import { presentStatus } from "../presenters.js";
import { statusRoute } from "../routes.js";
import { agentIdQuery } from "../schemas.js";
import type { StatusBodyCache } from "../status-cache.js";
import { parseQuery } from "../validation.js";

/**
 * `GET /v1/status`, the hot route (monitors poll it). A plain Hono route: the scope check, the
 * query validation and the response are inline, which saves the validator middleware's extra
 * async steps and a Headers object per request. The same route definition and zod schema
 * document it. A poll within `statusMaxAgeMs` of the last one for the same principal gets the
 * same body (see status-cache.ts): one store read, presenter and JSON.stringify per interval.
 */
export function registerStatusRoute(
  app: OpenAPIHono<AppEnv>,
  parts: {
    rekey: Rekey;
    auth: Auth;
    metrics: HttpMetrics;
    statusBodies: StatusBodyCache;
    statusMaxAgeMs: number;
  },
): void {
  const { rekey, auth, metrics, statusBodies, statusMaxAgeMs } = parts;
  app.openAPIRegistry.registerPath(statusRoute);
  const renderStatus = async (c: Context<AppEnv>, agentId: string | undefined) => {
    const body = await statusBodies.fill(agentId ?? "", async () => {
      const status = await rekey.status(agentId === undefined ? undefined : agent(agentId), {
        maxAgeMs: statusMaxAgeMs,
      });
      metrics.recordCooldown(status.principal, status.cooldownUntil);
      return JSON.stringify(presentStatus(status));
    });
    return jsonTextResponse(body, 200, v1Headers(c));
  };
  const answerStatus = (
    c: Context<AppEnv>,
    agentId: string | undefined,
  ): Response | Promise<Response> => {
    const cached = statusBodies.get(agentId ?? "");
    return cached === undefined
      ? renderStatus(c, agentId)
      : jsonTextResponse(cached, 200, v1Headers(c));
  };
  app.get(statusRoute.path, (c): Response | Promise<Response> => {
    const denied = auth.scopeProblem(c, "status");
    if (denied !== undefined) return denied;
    // Most polls carry no query: zod is asked only about one that does.
    const query = c.req.url.includes("?") ? parseQuery(c, agentIdQuery) : {};
    // Only a token with a principals list pays for the check (it may read the store).
    if (c.get("token")?.restricted === true) {
      return auth
        .principalProblem(c, query.agent_id)
        .then(
          (deniedPrincipal): Response | Promise<Response> =>
            deniedPrincipal ?? answerStatus(c, query.agent_id),
        );
    }
    return answerStatus(c, query.agent_id);
  });
}

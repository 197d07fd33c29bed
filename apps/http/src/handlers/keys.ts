import type { OpenAPIHono } from "@hono/zod-openapi";
import { agent, OPERATOR, type Rekey } from "@rekey/core";
import { type AppEnv, v1Headers } from "../http-env.js";
import { type Auth, refuse } from "../middleware/auth.js";
import { presentAgents, presentCurrentKey } from "../presenters.js";
import type { RateLimiter } from "../rate-limit.js";
import { agentsRoute, currentKeyRoute } from "../routes.js";

/** `GET /v1/agents` (rate limited: each call asks the faucet) and `GET /v1/keys/current`. */
export function registerKeyRoutes(
  app: OpenAPIHono<AppEnv>,
  parts: { rekey: Rekey; auth: Auth; faucetReadLimiter: RateLimiter },
): void {
  const { rekey, auth, faucetReadLimiter } = parts;
  app.openapi({ ...agentsRoute, middleware: [auth.requireScope("status")] as const }, async (c) => {
    // Every agent's name and balance: the operator's business.
    const denied = auth.principalDenied(c, OPERATOR);
    if (denied !== undefined) refuse(denied);
    // Each call costs a faucet request.
    faucetReadLimiter.take(c.get("token")?.name ?? "");
    return c.json(presentAgents(await rekey.listAgents()), 200, v1Headers(c));
  });

  app.openapi(
    { ...currentKeyRoute, middleware: [auth.requireScope("read_key")] as const },
    async (c) => {
      const agentId = c.req.valid("query").agent_id;
      const denied = await auth.principalProblem(c, agentId);
      if (denied !== undefined) refuse(denied);
      const current = await rekey.keyProvider.current(
        agentId === undefined ? undefined : agent(agentId),
      );
      return c.json(presentCurrentKey(current), 200, v1Headers(c));
    },
  );
}

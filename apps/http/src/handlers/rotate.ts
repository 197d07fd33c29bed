import { performance } from "node:perf_hooks";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { agent, OPERATOR, type Rekey, toRekeyError } from "@rekey/core";
import type { MiddlewareHandler } from "hono";
import { type AppEnv, v1Headers } from "../http-env.js";
import type { HttpMetrics } from "../metrics.js";
import { type Auth, refuse } from "../middleware/auth.js";
import { answerOnce } from "../middleware/idempotency.js";
import { presentRotation } from "../presenters.js";
import type { RateLimiter } from "../rate-limit.js";
import { rotateRoute } from "../routes.js";
import type { StatusBodyCache } from "../status-cache.js";

/** `POST /v1/rotate`: scope and principal checks, rate limit, Idempotency-Key, metrics. */
export function registerRotateRoute(
  app: OpenAPIHono<AppEnv>,
  parts: {
    rekey: Rekey;
    auth: Auth;
    limitBody: MiddlewareHandler<AppEnv>;
    rateLimiter: RateLimiter;
    metrics: HttpMetrics;
    statusBodies: StatusBodyCache;
    idempotencyRecordsPerToken: number;
  },
): void {
  const { rekey, auth, rateLimiter, metrics, statusBodies } = parts;
  app.openapi(
    { ...rotateRoute, middleware: [auth.requireScope("rotate"), parts.limitBody] as const },
    async (c) => {
      const body = c.req.valid("json");
      const idempotencyKey = c.req.valid("header")["idempotency-key"];
      if (body.force === true) {
        const denied = auth.scopeProblem(c, "force");
        if (denied !== undefined) refuse(denied);
      }
      const deniedPrincipal = await auth.principalProblem(c, body.agent_id);
      if (deniedPrincipal !== undefined) refuse(deniedPrincipal);
      // The scope middleware guarantees a token here.
      const tokenName = c.get("token")?.name ?? "";
      const started = performance.now();
      const rotate = async (attempt?: { requestId: string }) => {
        // Charged only for work actually done: a replayed Idempotency-Key costs nothing.
        rateLimiter.take(tokenName);
        let outcome: Awaited<ReturnType<typeof rekey.rotateKey>>;
        try {
          outcome = await rekey.rotateKey({
            target: body.agent_id === undefined ? undefined : agent(body.agent_id),
            dryRun: body.dry_run === true,
            force: body.force === true,
            // The Idempotency-Key's request_id, recorded before the rotation: a retry after a
            // crash gets this rotation back instead of a second one (or a cooldown refusal).
            ...(attempt === undefined ? {} : { requestId: attempt.requestId }),
          });
        } finally {
          // This process changed a key, or may have: the next status poll renders afresh.
          statusBodies.clear();
        }
        return presentRotation(outcome);
      };
      try {
        const answer = await answerOnce({
          rekey,
          idempotencyKey,
          changesState: body.dry_run !== true,
          body,
          tokenName,
          maxRecords: parts.idempotencyRecordsPerToken,
          run: rotate,
        });
        const response = answer.body;
        const outcome = answer.replayed
          ? "replayed"
          : response.dry_run
            ? "dry_run"
            : response.shared
              ? "shared"
              : "rotated";
        metrics.recordRotation(outcome, (performance.now() - started) / 1000);
        if (!response.dry_run) {
          metrics.recordCooldown(
            body.agent_id === undefined
              ? ((await rekey.activePrincipal()) ?? OPERATOR)
              : agent(body.agent_id),
            response.cooldown_until,
          );
        }
        return c.json(
          response,
          answer.status,
          answer.replayed ? { ...v1Headers(c), "idempotent-replayed": "true" } : v1Headers(c),
        );
      } catch (thrown) {
        metrics.recordRotation(toRekeyError(thrown).code, (performance.now() - started) / 1000);
        throw thrown;
      }
    },
  );
}

import type { OpenAPIHono, z } from "@hono/zod-openapi";
import { toRekeyError } from "@rekey/core";
import type { Logger } from "pino";
import { type AppEnv, jsonResponse, publicHeaders } from "../http-env.js";
import type { HttpMetrics } from "../metrics.js";
import { type Auth, refuse } from "../middleware/auth.js";
import { isReady, type ReadinessCheck } from "../readiness.js";
import { healthzRoute, metricsRoute, readyzRoute } from "../routes.js";
import type { healthzResponseSchema } from "../schemas.js";

/** The body of every `GET /healthz`: built once. */
export const HEALTHY_BODY = { status: "ok" } satisfies z.infer<typeof healthzResponseSchema>;

/** `GET /healthz`, `GET /readyz` and `GET /metrics`: what load balancers and scrapers poll. */
export function registerProbeRoutes(
  app: OpenAPIHono<AppEnv>,
  parts: {
    auth: Auth;
    logger: Logger;
    metrics: HttpMetrics;
    readiness: ReadinessCheck;
    metricsNeedToken: boolean;
  },
): void {
  const { auth, logger, metrics, readiness } = parts;
  // Polled by load balancers: a plain route with a prebuilt body, like the status route.
  app.openAPIRegistry.registerPath(healthzRoute);
  app.get(healthzRoute.path, (c) => jsonResponse(HEALTHY_BODY, 200, publicHeaders(c)));

  app.openapi(readyzRoute, async (c) => {
    try {
      const health = await readiness.current();
      metrics.recordHealth(health);
      const ready = isReady(health);
      if (!ready) {
        logger.warn({ store: health.store.problems, upstream: health.upstream.error }, "not ready");
      }
      const body = {
        status: ready ? ("ready" as const) : ("not_ready" as const),
        store: { ok: health.store.readable },
        upstream: { ok: health.upstream.ok },
      };
      return ready ? c.json(body, 200, publicHeaders(c)) : c.json(body, 503, publicHeaders(c));
    } catch (thrown) {
      const error = toRekeyError(thrown);
      logger.warn({ code: error.code, message: error.message }, "not ready");
      return c.json(
        { status: "not_ready" as const, store: { ok: false }, upstream: { ok: false } },
        503,
        publicHeaders(c),
      );
    }
  });

  app.openapi(metricsRoute, async (c) => {
    if (parts.metricsNeedToken) {
      const denied = auth.scopeProblem(c, "metrics");
      if (denied !== undefined) refuse(denied);
    }
    // The store's leftovers show here; the check is the one /readyz caches.
    await readiness.current().then(
      (health) => metrics.recordHealth(health),
      () => undefined,
    );
    return c.text(metrics.render(), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      ...publicHeaders(c),
    });
  });
}

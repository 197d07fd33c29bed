import { OpenAPIHono } from "@hono/zod-openapi";
import { type Clock, faucetIdOf, type Rekey } from "@rekey/core";
import type { Logger } from "pino";
import type { EventHub } from "./events/event-hub.js";
import { createEventStreams, type EventStreamLimits } from "./events/event-stream.js";
import { registerEventsRoute } from "./handlers/events.js";
import { registerKeyRoutes } from "./handlers/keys.js";
import { HEALTHY_BODY, registerProbeRoutes } from "./handlers/probes.js";
import { registerRotateRoute } from "./handlers/rotate.js";
import { registerStatusRoute } from "./handlers/status.js";
import { type AppEnv, publicHeaders } from "./http-env.js";
import { createHttpMetrics, type HttpMetrics } from "./metrics.js";
import { createAuth } from "./middleware/auth.js";
import { createBodyLimit } from "./middleware/body-limit.js";
import { createErrorHandler, createNotFoundHandler } from "./middleware/errors.js";
import { createPolledFastPath, type PolledFastPath } from "./middleware/polled-fast-path.js";
import { createProblemRenderer } from "./middleware/problems.js";
import { createRequestMiddleware } from "./middleware/request.js";
import { OPENAPI_DOCUMENT_CONFIG, registerOpenApiComponents } from "./openapi.js";
import { createRateLimiter, type RateLimitOptions } from "./rate-limit.js";
import { createReadinessCheck } from "./readiness.js";
import { createStatusBodyCache } from "./status-cache.js";
import { createTokenVerifier, type TokenConfig } from "./tokens.js";
import { type ConsoleOptions, createConsoleApp } from "./ui/console-app.js";
import { invalidInput } from "./validation.js";

export type { AppEnv } from "./http-env.js";

/** What `createHttpApp` needs; `bin.ts` builds the real ones, tests their own. */
export interface HttpAppDeps {
  rekey: Rekey;
  tokens: readonly TokenConfig[];
  /** Per-token limit on `POST /v1/rotate`, e.g. `{ capacity: 10, windowMs: 60_000 }`. */
  rateLimit: RateLimitOptions;
  logger: Logger;
  clock: Clock;
  /** Largest accepted request body; default 16 KiB. */
  bodyLimitBytes?: number;
  /**
   * How stale `GET /v1/status` may be about another process's writes to a shared store;
   * default 100 ms. This process's own rotations show at once. 0 reads the store every time.
   */
  statusMaxAgeMs?: number;
  metrics?: HttpMetrics;
  /** Per-token limit on routes that call the faucet (`GET /v1/agents`); default 60 a minute. */
  faucetReadLimit?: RateLimitOptions;
  /** How long `/readyz` and `/metrics` reuse a health check (each asks the faucet); default 5 s. */
  readinessMaxAgeMs?: number;
  /** Idempotency records kept per token (oldest dropped); default 100. */
  idempotencyRecordsPerToken?: number;
  /** The source of `GET /v1/events` (see events/event-hub.ts); without it the route is a 404. */
  events?: EventHub;
  /** Bounds on `/v1/events` streams. */
  eventLimits?: Partial<EventStreamLimits>;
  /** The web console at /ui (`--ui`), off when absent. */
  console?: ConsoleOptions;
}

/** The app, and the node-level answer to its successful polls that shares its state. */
export interface HttpService {
  app: OpenAPIHono<AppEnv>;
  /** Give to `listen` (server.ts): see middleware/polled-fast-path.ts. */
  polledFastPath: PolledFastPath;
  /**
   * Tell it when something else in this process (the scheduler) changed a key: the next status
   * poll renders afresh.
   */
  keysChanged(): void;
}

const DEFAULT_BODY_LIMIT = 16 * 1024;
const DEFAULT_FAUCET_READ_LIMIT: RateLimitOptions = { capacity: 60, windowMs: 60_000 };
const DEFAULT_READINESS_MAX_AGE_MS = 5_000;
const DEFAULT_IDEMPOTENCY_RECORDS_PER_TOKEN = 100;
const DEFAULT_STATUS_MAX_AGE_MS = 100;

/**
 * The HTTP endpoint as a Hono app: `app.fetch` for a server, `app.request()` for tests.
 *
 * Every failure is an `application/problem+json` response mapped from core's error code
 * (see `HTTP_ERRORS`); routes under `/v1` need a bearer token with the route's scope.
 */
export function createHttpApp(deps: HttpAppDeps): OpenAPIHono<AppEnv> {
  return createHttpService(deps).app;
}

/**
 * Assembles the middleware (middleware/) and route handlers (handlers/) into the app. Each
 * concern lives in its module: request id (request-id.ts), bearer token, scope and principal
 * checks (middleware/auth.ts), the log line (middleware/request-log.ts), rate limits
 * (rate-limit.ts), idempotency (middleware/idempotency.ts), metrics (metrics.ts) and the status
 * cache (status-cache.ts).
 */
export function createHttpService(deps: HttpAppDeps): HttpService {
  const { rekey, logger, clock } = deps;
  const verifyToken = createTokenVerifier(deps.tokens);
  const problem = createProblemRenderer(clock);
  const auth = createAuth({ verifyToken, rekey, problem });
  const metrics = deps.metrics ?? createHttpMetrics(clock);
  const readiness = createReadinessCheck(
    rekey,
    clock,
    deps.readinessMaxAgeMs ?? DEFAULT_READINESS_MAX_AGE_MS,
  );
  // Offered, not imposed: once a token has the "metrics" scope, /metrics needs one.
  const metricsNeedToken = deps.tokens.some((token) => token.scopes.includes("metrics"));
  // A status poll then costs no file system call: the file store confirms its parse (one stat)
  // at most every 100 ms, where a stat per request cost about a third of the route's CPU.
  const statusMaxAgeMs = deps.statusMaxAgeMs ?? DEFAULT_STATUS_MAX_AGE_MS;
  const statusBodies = createStatusBodyCache(statusMaxAgeMs);

  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw invalidInput(result.error);
    },
  });
  app.use(createRequestMiddleware({ auth, logger, problem, metricsNeedToken }));
  app.onError(createErrorHandler(logger, problem));
  app.notFound(createNotFoundHandler(problem));

  registerRotateRoute(app, {
    rekey,
    auth,
    limitBody: createBodyLimit(deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT, problem),
    rateLimiter: createRateLimiter(deps.rateLimit, clock),
    metrics,
    statusBodies,
    idempotencyRecordsPerToken:
      deps.idempotencyRecordsPerToken ?? DEFAULT_IDEMPOTENCY_RECORDS_PER_TOKEN,
  });
  registerStatusRoute(app, { rekey, auth, metrics, statusBodies, statusMaxAgeMs });
  registerKeyRoutes(app, {
    rekey,
    auth,
    faucetReadLimiter: createRateLimiter(
      { what: "faucet-bound", ...(deps.faucetReadLimit ?? DEFAULT_FAUCET_READ_LIMIT) },
      clock,
    ),
  });

  const eventStreams =
    deps.events &&
    createEventStreams(deps.events, deps.eventLimits, async () =>
      faucetIdOf(await deps.rekey.baseUrl()),
    );
  registerEventsRoute(app, { auth, eventStreams });

  if (deps.console !== undefined) {
    app.route(
      "/ui",
      createConsoleApp({
        ...deps.console,
        rekey,
        clock,
        logger,
        streams: eventStreams,
        verifyToken,
        keysChanged: () => statusBodies.clear(),
      }),
    );
  }

  registerProbeRoutes(app, { auth, logger, metrics, readiness, metricsNeedToken });

  registerOpenApiComponents(app);
  // What `app.doc31` does, with the request id header every other response carries.
  app.get("/openapi.json", (c) =>
    c.json(app.getOpenAPI31Document(OPENAPI_DOCUMENT_CONFIG), 200, publicHeaders(c)),
  );

  const polledFastPath = createPolledFastPath({
    verifyToken,
    statusBodies,
    logger,
    healthyText: JSON.stringify(HEALTHY_BODY),
  });
  return { app, polledFastPath, keysChanged: () => statusBodies.clear() };
}

import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import {
  agent,
  type Clock,
  faucetIdOf,
  OPERATOR,
  type Principal,
  principalLabel,
  type Rekey,
  RekeyError,
  redactKeys,
  toRekeyError,
} from "@rekey/core";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import type { Logger } from "pino";
import type { EventHub } from "./events/event-hub.js";
import { createEventStreams, type EventStreamLimits } from "./events/event-stream.js";
import { createHttpMetrics, type HttpMetrics } from "./metrics.js";
import { OPENAPI_DOCUMENT_CONFIG, registerOpenApiComponents } from "./openapi.js";
import { presentAgents, presentCurrentKey, presentRotation, presentStatus } from "./presenters.js";
import { type ProblemOverrides, problemResponse } from "./problem.js";
import { createRateLimiter, type RateLimitOptions } from "./rate-limit.js";
import { createReadinessCheck, isReady } from "./readiness.js";
import { requestIdFrom } from "./request-id.js";
import {
  agentsRoute,
  currentKeyRoute,
  eventsRoute,
  healthzRoute,
  metricsRoute,
  ROUTE_METHODS,
  readyzRoute,
  rotateRoute,
  statusRoute,
} from "./routes.js";
import { agentIdQuery, type healthzResponseSchema } from "./schemas.js";
import { createStatusBodyCache } from "./status-cache.js";
import {
  type AuthenticatedToken,
  createTokenVerifier,
  type Scope,
  type TokenConfig,
} from "./tokens.js";
import { type ConsoleOptions, createConsoleApp } from "./ui/console-app.js";

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

type AppEnv = {
  // Set by @hono/node-server; absent when the app is called as a function (tests).
  Bindings: { incoming?: IncomingMessage } | undefined;
  Variables: {
    requestId: string;
    token: AuthenticatedToken | undefined;
    errorCode: string | undefined;
  };
};

const DEFAULT_BODY_LIMIT = 16 * 1024;
const DEFAULT_FAUCET_READ_LIMIT: RateLimitOptions = { capacity: 60, windowMs: 60_000 };
const DEFAULT_READINESS_MAX_AGE_MS = 5_000;
const DEFAULT_IDEMPOTENCY_RECORDS_PER_TOKEN = 100;
const DEFAULT_STATUS_MAX_AGE_MS = 100;
/**
 * Routes that monitors, probes and scrapers poll. A successful request to one is logged at
 * debug: at the default level, polling neither floods the log nor pays for a log line (the
 * costliest part of a status request). Failures (401, 403, 5xx...) and every other route,
 * rotations and key reads above all, are logged at info or above.
 */
const POLLED_ROUTES: ReadonlySet<string> = new Set([
  "/v1/status",
  "/healthz",
  "/readyz",
  "/metrics",
]);
const BEARER_REALM = 'Bearer realm="rekey"';

/** A stable hash of the validated body and the token it came with, for Idempotency-Key. */
function idempotencyHash(body: Record<string, unknown>, tokenName: string): string {
  const canonical = Object.keys(body)
    .filter((name) => body[name] !== undefined)
    .sort()
    .map((name) => [name, body[name]]);
  return createHash("sha256")
    .update(JSON.stringify({ body: canonical, token: tokenName }))
    .digest("hex");
}

/** True when the request came with a body (or announced one), read or not. */
function hasBody(c: Context<AppEnv>): boolean {
  const length = requestHeader(c, "content-length");
  return (
    (length !== undefined && length !== "0") || requestHeader(c, "transfer-encoding") !== undefined
  );
}

/**
 * Ends a typed route handler with a problem response already built (a 403 from a scope or
 * principal check): `onError` sends it as it is.
 */
function refuse(response: Response): never {
  throw new HTTPException(response.status as 403, { res: response });
}

function principalFromQuery(agentId: string | undefined): Principal | undefined {
  return agentId === undefined ? undefined : agent(agentId);
}

/**
 * A request header. Under @hono/node-server it comes from node's own parsed headers: the first
 * `c.req.header()` call builds a fetch `Headers` from all raw headers, which costs more than
 * everything else this app does with headers. (For a repeated Authorization header node keeps
 * the first, as every node:http server does.)
 */
function requestHeader(c: Context<AppEnv>, name: string): string | undefined {
  const incoming = c.env?.incoming;
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** INVALID_INPUT listing zod's issues: what every route answers to a request it cannot parse. */
function invalidInput(error: z.ZodError): RekeyError {
  const issues = error.issues.map((issue) =>
    issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`,
  );
  return new RekeyError("INVALID_INPUT", `Invalid request: ${issues.join("; ")}`, {
    details: { issues },
  });
}

/**
 * The query as Hono's validator hands it to zod (a parameter given once is a string, given
 * more often an array), parsed with `schema`.
 * @throws RekeyError INVALID_INPUT when the query does not match.
 */
function parseQuery<Schema extends z.ZodType>(c: Context<AppEnv>, schema: Schema): z.infer<Schema> {
  const query: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(c.req.queries())) {
    query[name] = values.length === 1 ? (values[0] ?? "") : values;
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw invalidInput(parsed.error);
  return parsed.data;
}

/**
 * A JSON response with its headers in one plain object. @hono/node-server writes such a
 * response straight to the socket; `c.header()` or several headers through `c.json` would build
 * a fetch `Headers` object first, which costs a few microseconds per request.
 */
function jsonResponse(body: unknown, status: number, headers: Record<string, string>): Response {
  return jsonTextResponse(JSON.stringify(body), status, headers);
}

/** {@link jsonResponse} for a body already serialised. */
function jsonTextResponse(text: string, status: number, headers: Record<string, string>): Response {
  return new Response(text, {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * The HTTP endpoint as a Hono app: `app.fetch` for a server, `app.request()` for tests.
 *
 * Every failure is an `application/problem+json` response mapped from core's error code
 * (see `HTTP_ERRORS`); routes under `/v1` need a bearer token with the route's scope.
 */
export function createHttpApp(deps: HttpAppDeps): OpenAPIHono<AppEnv> {
  const { rekey, logger, clock } = deps;
  const verifyToken = createTokenVerifier(deps.tokens);
  const rateLimiter = createRateLimiter(deps.rateLimit, clock);
  const faucetReadLimiter = createRateLimiter(
    { what: "faucet-bound", ...(deps.faucetReadLimit ?? DEFAULT_FAUCET_READ_LIMIT) },
    clock,
  );
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

  const problem = (
    thrown: unknown,
    c: { get(key: "requestId"): string },
    overrides: ProblemOverrides = {},
  ) => problemResponse(thrown, clock.now(), { requestId: c.get("requestId"), ...overrides });

  // Every response names its request id in X-Request-Id: problem responses through
  // `problemResponse`, JSON through these headers.
  const publicHeaders = (c: { get(key: "requestId"): string }) => ({
    "x-request-id": c.get("requestId"),
  });
  // Status, agents and keys change with every rotation: nothing under /v1 may be cached.
  const v1Headers = (c: { get(key: "requestId"): string }) => ({
    "cache-control": "no-store",
    "x-request-id": c.get("requestId"),
  });

  /** The 401 for a request under /v1 without a known bearer token, or its token. */
  const authenticate = (c: Context<AppEnv>): Response | AuthenticatedToken => {
    const token = verifyToken(requestHeader(c, "authorization"));
    if (token !== undefined) return token;
    c.set("errorCode", "UNAUTHORIZED");
    return problem(
      new RekeyError("UNAUTHORIZED", "Missing or unknown bearer token.", {
        hint: "Send Authorization: Bearer <token> with a configured token.",
      }),
      c,
      {
        status: 401,
        title: "Authentication required",
        type: "urn:rekey:error:bearer-token",
        headers: { "www-authenticate": BEARER_REALM },
      },
    );
  };

  // Every request: its id, the bearer token for routes under /v1, and one log line. One
  // middleware rather than one per concern: each Hono middleware layer costs every request a
  // promise and its microtasks (about 2 µs in process, twice that in the loaded server), and
  // monitors poll /v1/status. Only the token's configured name is logged, never the token; pino's redact
  // paths (see logger.ts) are a second line of defence.
  app.use(async (c, next) => {
    const started = performance.now();
    c.set("requestId", requestIdFrom(requestHeader(c, "x-request-id")));
    const path = c.req.path;
    const authenticated =
      path.startsWith("/v1/") || (metricsNeedToken && path === "/metrics")
        ? authenticate(c)
        : undefined;
    if (authenticated instanceof Response) {
      c.res = authenticated;
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
    const level =
      status >= 500 ? "error" : status < 400 && POLLED_ROUTES.has(route) ? "debug" : "info";
    // Checked before the line is built: at info, a status poll costs no log work at all.
    if (!logger.isLevelEnabled(level)) return;
    logger[level](
      {
        request_id: c.get("requestId"),
        method: c.req.method,
        route,
        status,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        token_name: c.get("token")?.name,
        code: c.get("errorCode"),
      },
      "request",
    );
  });

  app.onError((thrown, c) => {
    // A refusal already rendered (see `refuse`).
    if (thrown instanceof HTTPException && thrown.res !== undefined) return thrown.getResponse();
    if (thrown instanceof HTTPException) {
      // Transport-level refusals from Hono (malformed JSON, wrong media type): the caller's input.
      const status = thrown.status;
      const code = status >= 500 ? "INTERNAL" : "INVALID_INPUT";
      c.set("errorCode", code);
      const title =
        status === 415 ? "Unsupported media type: send application/json" : "Invalid request";
      return problem(new RekeyError(code, thrown.message || title), c, { status, title });
    }
    const error = toRekeyError(thrown);
    c.set("errorCode", error.code);
    if (error.code === "INTERNAL") {
      const cause = error.cause instanceof Error ? error.cause : error;
      logger.error(
        {
          request_id: c.get("requestId"),
          err: { message: redactKeys(cause.message), stack: redactKeys(cause.stack ?? "") },
        },
        "unexpected error",
      );
    }
    return problem(error, c);
  });

  app.notFound((c) => {
    const allowed = ROUTE_METHODS.get(c.req.path);
    if (allowed !== undefined) {
      c.set("errorCode", "INVALID_INPUT");
      return problem(
        new RekeyError("INVALID_INPUT", `${c.req.path} does not take ${c.req.method}`, {
          hint: `Use ${allowed.join(" or ")}.`,
        }),
        c,
        { status: 405, title: "Method not allowed", headers: { allow: allowed.join(", ") } },
      );
    }
    c.set("errorCode", "NOT_FOUND");
    return problem(new RekeyError("NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`), c);
  });

  /** The 403 for a token without `scope`, or undefined when the token has it. */
  const scopeProblem = (c: Context<AppEnv>, scope: Scope): Response | undefined => {
    if (c.get("token")?.scopes.has(scope) === true) return undefined;
    c.set("errorCode", "FORBIDDEN");
    return problem(new RekeyError("FORBIDDEN", `This token lacks the "${scope}" scope.`), c, {
      title: "Insufficient scope",
      headers: {
        "www-authenticate": `${BEARER_REALM}, error="insufficient_scope", scope="${scope}"`,
      },
    });
  };

  /**
   * The 403 for a token whose `principals` list leaves out the principal a request acts on (the
   * profile's active principal when the request names none), or undefined. Checked before core
   * is called, so a refused request changes nothing and calls nothing upstream.
   */
  const principalProblem = async (
    c: Context<AppEnv>,
    agentId: string | number | undefined,
  ): Promise<Response | undefined> => {
    if (c.get("token")?.restricted !== true) return undefined;
    const target =
      agentId === undefined ? ((await rekey.activePrincipal()) ?? OPERATOR) : agent(agentId);
    return principalDenied(c, target);
  };

  /** The 403 for a token whose `principals` list leaves out `target`, or undefined. */
  const principalDenied = (c: Context<AppEnv>, target: Principal): Response | undefined => {
    if (c.get("token")?.allows(target) !== false) return undefined;
    c.set("errorCode", "FORBIDDEN");
    return problem(
      new RekeyError("FORBIDDEN", `This token may not act on the ${principalLabel(target)}.`, {
        hint: "Its principals list in the token configuration names the principals it may act on.",
        details: { principal: principalLabel(target) },
      }),
      c,
      { title: "Principal not allowed for this token" },
    );
  };

  const requireScope = (scope: Scope) =>
    createMiddleware<AppEnv>(async (c, next) => {
      const denied = scopeProblem(c, scope);
      if (denied !== undefined) refuse(denied);
      await next();
    });

  // Only on the route with a body: touching the body on GETs would make @hono/node-server
  // build a full Request object for every status call.
  const limitBody = bodyLimit({
    maxSize: deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    onError: (c) => {
      c.set("errorCode", "INVALID_INPUT");
      return problem(
        new RekeyError(
          "INVALID_INPUT",
          `The request body exceeds ${deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT} bytes.`,
        ),
        c,
        { status: 413, title: "Request body too large" },
      );
    },
  });

  app.openapi(
    { ...rotateRoute, middleware: [requireScope("rotate"), limitBody] as const },
    async (c) => {
      const body = c.req.valid("json");
      const idempotencyKey = c.req.valid("header")["idempotency-key"];
      if (body.force === true) {
        const denied = scopeProblem(c, "force");
        if (denied !== undefined) refuse(denied);
      }
      const deniedPrincipal = await principalProblem(c, body.agent_id);
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
        return { status: 200, body: presentRotation(outcome) };
      };
      try {
        // A dry run changes nothing, so repeating it is harmless: it neither claims nor stores
        // an Idempotency-Key slot. Slots are the token's own, and capped per token.
        const answer =
          idempotencyKey === undefined || body.dry_run === true
            ? { ...(await rotate()), replayed: false }
            : await rekey.withIdempotency(
                idempotencyKey,
                idempotencyHash(body, tokenName),
                rotate,
                {
                  scope: tokenName,
                  maxRecords:
                    deps.idempotencyRecordsPerToken ?? DEFAULT_IDEMPOTENCY_RECORDS_PER_TOKEN,
                },
              );
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
          200,
          answer.replayed ? { ...v1Headers(c), "idempotent-replayed": "true" } : v1Headers(c),
        );
      } catch (thrown) {
        metrics.recordRotation(toRekeyError(thrown).code, (performance.now() - started) / 1000);
        throw thrown;
      }
    },
  );

  // The hot route (monitors poll it) is a plain Hono route: the scope check, the query
  // validation and the response are inline, which saves the validator middleware's extra async
  // steps and a Headers object per request. The same route definition and zod schema document it.
  app.openAPIRegistry.registerPath(statusRoute);
  // A poll within statusMaxAgeMs of the last one for the same principal gets the same body
  // (see status-cache.ts): one store read, presenter and JSON.stringify per interval.
  const renderStatus = async (c: Context<AppEnv>, agentId: string | undefined) => {
    const body = await statusBodies.fill(agentId ?? "", async () => {
      const status = await rekey.status(principalFromQuery(agentId), {
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
    const denied = scopeProblem(c, "status");
    if (denied !== undefined) return denied;
    // Most polls carry no query: zod is asked only about one that does.
    const query = c.req.url.includes("?") ? parseQuery(c, agentIdQuery) : {};
    // Only a token with a principals list pays for the check (it may read the store).
    if (c.get("token")?.restricted === true) {
      return principalProblem(c, query.agent_id).then(
        (deniedPrincipal): Response | Promise<Response> =>
          deniedPrincipal ?? answerStatus(c, query.agent_id),
      );
    }
    return answerStatus(c, query.agent_id);
  });

  app.openapi({ ...agentsRoute, middleware: [requireScope("status")] as const }, async (c) => {
    // Every agent's name and balance: the operator's business.
    const denied = principalDenied(c, OPERATOR);
    if (denied !== undefined) refuse(denied);
    // Each call costs a faucet request.
    faucetReadLimiter.take(c.get("token")?.name ?? "");
    return c.json(presentAgents(await rekey.listAgents()), 200, v1Headers(c));
  });

  app.openapi(
    { ...currentKeyRoute, middleware: [requireScope("read_key")] as const },
    async (c) => {
      const agentId = c.req.valid("query").agent_id;
      const denied = await principalProblem(c, agentId);
      if (denied !== undefined) refuse(denied);
      const current = await rekey.keyProvider.current(principalFromQuery(agentId));
      return c.json(presentCurrentKey(current), 200, v1Headers(c));
    },
  );

  app.openAPIRegistry.registerPath(eventsRoute);
  const eventStreams =
    deps.events &&
    createEventStreams(deps.events, deps.eventLimits, async () =>
      faucetIdOf(await deps.rekey.baseUrl()),
    );
  app.get(eventsRoute.path, async (c) => {
    const denied = scopeProblem(c, "status");
    if (denied !== undefined) return denied;
    if (eventStreams === undefined) {
      throw new RekeyError("NOT_FOUND", "This server has no event source.");
    }
    // The scope check guarantees a token here.
    const token = c.get("token") as AuthenticatedToken;
    const response = await eventStreams.open(token, requestHeader(c, "last-event-id"));
    response.headers.set("x-request-id", c.get("requestId"));
    return response;
  });

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
      }),
    );
  }

  // Polled by load balancers: a plain route with a prebuilt body, like the status route.
  app.openAPIRegistry.registerPath(healthzRoute);
  const healthyBody = { status: "ok" } satisfies z.infer<typeof healthzResponseSchema>;
  app.get(healthzRoute.path, (c) => jsonResponse(healthyBody, 200, publicHeaders(c)));

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
    if (metricsNeedToken) {
      const denied = scopeProblem(c, "metrics");
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

  registerOpenApiComponents(app);
  // What `app.doc31` does, with the request id header every other response carries.
  app.get("/openapi.json", (c) =>
    c.json(app.getOpenAPI31Document(OPENAPI_DOCUMENT_CONFIG), 200, publicHeaders(c)),
  );

  return app;
}

import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import {
  agentIdQuery,
  agentsResponseSchema,
  currentKeyResponseSchema,
  healthzResponseSchema,
  problemSchema,
  readyzResponseSchema,
  rotateBodySchema,
  rotateHeadersSchema,
  rotateResponseSchema,
  statusResponseSchema,
} from "./schemas.js";

// The route definitions: paths, inputs, outputs, documentation. Handlers live in app.ts.

/** Response headers, documented once (components.headers). */
const requestIdHeader = { $ref: "#/components/headers/X-Request-Id" };
const retryAfterHeader = { $ref: "#/components/headers/Retry-After" };

const problem = (description: string, options: { retryAfter?: boolean } = {}) => ({
  description,
  headers: {
    "X-Request-Id": requestIdHeader,
    ...(options.retryAfter === true ? { "Retry-After": retryAfterHeader } : {}),
  },
  content: { "application/problem+json": { schema: problemSchema } },
});

/** A 2xx response with a JSON body and the X-Request-Id every response carries. */
const json = <Schema>(
  description: string,
  schema: Schema,
  headers: Record<string, unknown> = {},
) => ({
  description,
  headers: { "X-Request-Id": requestIdHeader, ...headers },
  content: { "application/json": { schema } },
});

const bearer = [{ bearerAuth: [] }];
/** Routes that need no token say so: the document has no default security to inherit. */
const open: Array<Record<string, string[]>> = [];

const authProblems = {
  401: problem("Missing or unknown bearer token."),
  403: problem(
    "The token lacks the scope this route needs, or its principals list leaves out the principal the request acts on.",
  ),
};

/** What any route that reads the credential store can answer. */
const storeProblems = {
  500: problem(
    "STORE_CORRUPT, STORE_LOCKED, CONFIG_INVALID or an unexpected error (the log has it).",
  ),
  503: problem("STORE_UNAVAILABLE: the credential store cannot be read or written."),
};

/** What any route that calls the faucet can answer. */
const upstreamProblems = {
  502: problem(
    "The faucet is unavailable, rejected the stored key (UNAUTHORIZED) or sent an invalid reply.",
  ),
  504: problem("UPSTREAM_TIMEOUT: the faucet did not answer in time."),
};

const badAgentId = problem(
  "INVALID_INPUT: `agent_id` is not a positive whole number, or the query names another parameter (refused, not ignored).",
);
/** Routes without parameters refuse a query rather than ignore it (see ROUTE_QUERIES). */
const queryRefused = { 400: problem("INVALID_INPUT: a query parameter; this route takes none.") };
const noSuchPrincipal = problem(
  "NOT_FOUND: no key is held for the principal, or the agent is not one of this operator's.",
);

/** `POST /v1/rotate` (scope rotate). */
export const rotateRoute = createRoute({
  method: "post",
  path: "/v1/rotate",
  operationId: "rotateKey",
  summary: "Rotate a key (scope: rotate)",
  description:
    "Rotates the key of the profile's active principal, or of `agent_id`. Answers with fingerprints, never the raw key. Rate limited per token. `force` needs the `force` scope as well. An Idempotency-Key belongs to the token that sent it; dry runs store none. The body is optional: an empty POST rotates the active principal's key.",
  security: bearer,
  request: {
    headers: rotateHeadersSchema,
    body: { required: false, content: { "application/json": { schema: rotateBodySchema } } },
  },
  responses: {
    200: json("The rotation (or with dry_run, the plan).", rotateResponseSchema, {
      "Idempotent-Replayed": {
        description:
          "`true` when this is the stored answer to an earlier request with the same Idempotency-Key; nothing was rotated again.",
        schema: { type: "string", enum: ["true"] },
      },
    }),
    400: problem(
      "Malformed JSON, unknown fields or invalid values, or a query string (the fields go in the body).",
    ),
    ...authProblems,
    404: problem("NOT_FOUND: the agent is not one of this operator's."),
    409: problem("COOLDOWN_ACTIVE, ROTATION_IN_PROGRESS (both with Retry-After) or KEY_LOST.", {
      retryAfter: true,
    }),
    413: problem("Request body too large."),
    415: problem("A body that is not application/json."),
    422: problem("IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used with another body."),
    429: problem("RATE_LIMITED: too many rotations for this token.", { retryAfter: true }),
    ...storeProblems,
    ...upstreamProblems,
  },
});

/** `GET /v1/status` (scope status). */
export const statusRoute = createRoute({
  method: "get",
  path: "/v1/status",
  operationId: "getStatus",
  summary: "Key status (scope: status)",
  description: "Principal, fingerprint, key age, cooldown and any unfinished rotation.",
  security: bearer,
  request: { query: agentIdQuery },
  responses: {
    200: json("The status of the principal's key.", statusResponseSchema),
    400: badAgentId,
    ...authProblems,
    404: noSuchPrincipal,
    ...storeProblems,
  },
});

/** `GET /v1/agents` (scope status). */
export const agentsRoute = createRoute({
  method: "get",
  path: "/v1/agents",
  operationId: "listAgents",
  summary: "The operator's agents (scope: status)",
  description:
    "Asks the faucet for the operator's agents and adds what the store holds for each. Rate limited per token. Needs a token that may act on the operator.",
  security: bearer,
  responses: {
    200: json("The agents, with what the store holds for each.", agentsResponseSchema),
    ...queryRefused,
    ...authProblems,
    429: problem("RATE_LIMITED: too many faucet-bound requests for this token (with Retry-After)."),
    ...storeProblems,
    ...upstreamProblems,
  },
});

/** `GET /v1/keys/current` (scope read_key). */
export const currentKeyRoute = createRoute({
  method: "get",
  path: "/v1/keys/current",
  operationId: "getCurrentKey",
  summary: "The raw current key (scope: read_key)",
  description: "The only route that returns a raw key. Sent with `Cache-Control: no-store`.",
  security: bearer,
  request: { query: agentIdQuery },
  responses: {
    200: json("The current key.", currentKeyResponseSchema),
    400: badAgentId,
    ...authProblems,
    404: noSuchPrincipal,
    ...storeProblems,
  },
});

/** `GET /v1/events` (scope status): server-sent events, see events/event-hub.ts. */
export const eventsRoute = createRoute({
  method: "get",
  path: "/v1/events",
  operationId: "getEvents",
  summary: "Rotations, deliveries and cooldown ends as they happen (scope status)",
  description:
    "A text/event-stream. Audit-log events (`rotation`, `delivery`, `audit`) carry an id (`<seq>-<hash prefix>`) from the store's hash-chained audit log: reconnect with `Last-Event-ID` to receive what was missed (a `resync` event says to re-read `/v1/status` when the id is unknown or too far back). `cooldown.ended` and events published by the server itself carry no id. Rotations by other processes and replicas sharing the store appear too. A token with a principals list sees only its principals' events. Never a key: fingerprints only.",
  security: bearer,
  request: {
    headers: z.object({
      "last-event-id": z
        .string()
        .max(64)
        .optional()
        .openapi({ description: "Resume after this event id." }),
    }),
  },
  responses: {
    200: {
      description: "The event stream; it stays open.",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...queryRefused,
    ...authProblems,
    404: problem("This server has no event source (an app built without one)."),
    429: problem("Too many event streams are open (per server, or for this token).", {
      retryAfter: true,
    }),
    ...storeProblems,
  },
});

/** `GET /healthz` (no token). */
export const healthzRoute = createRoute({
  method: "get",
  path: "/healthz",
  operationId: "getLiveness",
  summary: "Liveness (no authentication)",
  description: "Answers as long as the process runs; checks nothing else.",
  security: open,
  responses: {
    200: json("The process is alive.", healthzResponseSchema),
    ...queryRefused,
  },
});

/** `GET /readyz` (no token). */
export const readyzRoute = createRoute({
  method: "get",
  path: "/readyz",
  operationId: "getReadiness",
  summary: "Readiness: the store reads and the faucet answers (no authentication)",
  description:
    "One health check serves every call for 5 s; 503 until both answer. Leftovers the store reports (old temp files, a torn audit line) do not make the server unready; /metrics counts them.",
  security: open,
  responses: {
    200: json("Ready.", readyzResponseSchema),
    ...queryRefused,
    503: json("Not ready; the log says why.", readyzResponseSchema),
  },
});

/** `GET /metrics` (no token). */
export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  operationId: "getMetrics",
  summary: "Prometheus metrics (scope metrics, once a token has it; else no authentication)",
  description: "Rotation counts and durations, cooldowns, request counts by route and status.",
  security: open,
  responses: {
    200: {
      description: "Prometheus text exposition format 0.0.4.",
      headers: { "X-Request-Id": requestIdHeader },
      content: { "text/plain": { schema: z.string() } },
    },
    ...queryRefused,
  },
});

const API_ROUTES: readonly RouteConfig[] = [
  rotateRoute,
  statusRoute,
  agentsRoute,
  currentKeyRoute,
  eventsRoute,
  healthzRoute,
  readyzRoute,
  metricsRoute,
];

/** Every path the app serves and its methods: a known path with another method is a 405. */
export const ROUTE_METHODS: ReadonlyMap<string, readonly string[]> = new Map([
  ...API_ROUTES.map((route) => [route.path, [route.method.toUpperCase()]] as const),
  ["/openapi.json", ["GET"]],
]);

/** What a path takes in its query, and what to tell a caller who sent something else. */
export interface QueryParameters {
  method: string;
  /** The parameter names: those of the route's zod query schema, which the document lists. */
  names: readonly string[];
  hint: string;
}

const NO_QUERY_HINT = "Remove the query: this route takes no parameters.";
/** The habit of GET /v1/status carried over to the POST, where the body holds the fields. */
const ROTATE_QUERY_HINT =
  'agent_id, dry_run and force go in the JSON body, e.g. {"agent_id": 7}; nothing was rotated.';

/**
 * Every path's query parameters. Any other name is refused (validation.ts) rather than ignored:
 * `GET /v1/status?agentid=7` answered for the operator as if no parameter had been given.
 */
export const ROUTE_QUERIES: ReadonlyMap<string, QueryParameters> = new Map([
  ...API_ROUTES.map((route) => {
    const query = route.request?.query;
    const names = query instanceof z.ZodObject ? Object.keys(query.shape) : [];
    const hint =
      route === rotateRoute
        ? ROTATE_QUERY_HINT
        : names.length > 0
          ? `Send only ${names.join(" or ")} (see /openapi.json), or no query at all.`
          : NO_QUERY_HINT;
    return [route.path, { method: route.method.toUpperCase(), names, hint }] as const;
  }),
  ["/openapi.json", { method: "GET", names: [], hint: NO_QUERY_HINT }],
]);

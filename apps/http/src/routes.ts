import { createRoute, z } from "@hono/zod-openapi";
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

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: problemSchema } },
});

const bearer = [{ bearerAuth: [] }];

const authProblems = {
  401: problem("Missing or unknown bearer token."),
  403: problem(
    "The token lacks the scope this route needs, or its principals list leaves out the principal the request acts on.",
  ),
};

/** `POST /v1/rotate` (scope rotate). */
export const rotateRoute = createRoute({
  method: "post",
  path: "/v1/rotate",
  summary: "Rotate a key (scope: rotate)",
  description:
    "Rotates the key of the profile's active principal, or of `agent_id`. Answers with fingerprints, never the raw key. Rate limited per token. `force` needs the `force` scope as well. An Idempotency-Key belongs to the token that sent it; dry runs store none.",
  security: bearer,
  request: {
    headers: rotateHeadersSchema,
    body: { required: true, content: { "application/json": { schema: rotateBodySchema } } },
  },
  responses: {
    200: {
      description: "The rotation (or with dry_run, the plan).",
      content: { "application/json": { schema: rotateResponseSchema } },
    },
    400: problem("Malformed JSON, unknown fields or invalid values."),
    ...authProblems,
    409: problem("COOLDOWN_ACTIVE (with Retry-After), ROTATION_IN_PROGRESS or KEY_LOST."),
    413: problem("Request body too large."),
    422: problem("IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used with another body."),
    429: problem("RATE_LIMITED: too many rotations for this token (with Retry-After)."),
    502: problem("The faucet rejected the stored key or answered badly."),
  },
});

/** `GET /v1/status` (scope status). */
export const statusRoute = createRoute({
  method: "get",
  path: "/v1/status",
  summary: "Key status (scope: status)",
  description: "Principal, fingerprint, key age, cooldown and any unfinished rotation.",
  security: bearer,
  request: { query: agentIdQuery },
  responses: {
    200: {
      description: "The status of the principal's key.",
      content: { "application/json": { schema: statusResponseSchema } },
    },
    ...authProblems,
    404: problem("No key is held for the principal."),
  },
});

/** `GET /v1/agents` (scope status). */
export const agentsRoute = createRoute({
  method: "get",
  path: "/v1/agents",
  summary: "The operator's agents (scope: status)",
  description:
    "Asks the faucet, so it is rate limited per token. Needs a token that may act on the operator.",
  security: bearer,
  responses: {
    200: {
      description: "The agents, with what the store holds for each.",
      content: { "application/json": { schema: agentsResponseSchema } },
    },
    ...authProblems,
    429: problem("RATE_LIMITED: too many faucet-bound requests for this token (with Retry-After)."),
  },
});

/** `GET /v1/keys/current` (scope read_key). */
export const currentKeyRoute = createRoute({
  method: "get",
  path: "/v1/keys/current",
  summary: "The raw current key (scope: read_key)",
  description: "The only route that returns a raw key. Sent with `Cache-Control: no-store`.",
  security: bearer,
  request: { query: agentIdQuery },
  responses: {
    200: {
      description: "The current key.",
      content: { "application/json": { schema: currentKeyResponseSchema } },
    },
    ...authProblems,
    404: problem("No key is held for the principal."),
  },
});

/** `GET /healthz` (no token). */
export const healthzRoute = createRoute({
  method: "get",
  path: "/healthz",
  summary: "Liveness (no authentication)",
  responses: {
    200: {
      description: "The process is alive.",
      content: { "application/json": { schema: healthzResponseSchema } },
    },
  },
});

/** `GET /readyz` (no token). */
export const readyzRoute = createRoute({
  method: "get",
  path: "/readyz",
  summary: "Readiness: the store reads and the faucet answers (no authentication)",
  description:
    "One health check serves every call for 5 s. Leftovers the store reports (old temp files, a torn audit line) do not make the server unready; /metrics counts them.",
  responses: {
    200: {
      description: "Ready.",
      content: { "application/json": { schema: readyzResponseSchema } },
    },
    503: {
      description: "Not ready; the log says why.",
      content: { "application/json": { schema: readyzResponseSchema } },
    },
  },
});

/** `GET /metrics` (no token). */
export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  summary: "Prometheus metrics (scope metrics, once a token has it; else no authentication)",
  responses: {
    200: {
      description: "Prometheus text exposition format 0.0.4.",
      content: { "text/plain": { schema: z.string() } },
    },
  },
});

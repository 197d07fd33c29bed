import { type ErrorCode, type ErrorView, errorFacts, errorView } from "@rekey/core";

/**
 * How each core error code reads over HTTP: status and a short title.
 *
 * One exhaustive table (`Record<ErrorCode, ...>`): adding a code to core fails the build here
 * until it is mapped.
 */
export const HTTP_ERRORS: Record<ErrorCode, { status: number; title: string }> = {
  INVALID_INPUT: { status: 400, title: "Invalid request" },
  // Core's UNAUTHORIZED means the *faucet* rejected the key rekey holds, not that the caller of
  // this endpoint is unauthenticated (that is our own 401, see `authenticate` in app.ts). It is an
  // upstream failure as seen from here.
  UNAUTHORIZED: { status: 502, title: "The faucet rejected the stored key" },
  FORBIDDEN: { status: 403, title: "Forbidden" },
  NOT_FOUND: { status: 404, title: "Not found" },
  COOLDOWN_ACTIVE: { status: 409, title: "Cooldown active" },
  RATE_LIMITED: { status: 429, title: "Too many requests" },
  INSUFFICIENT_BALANCE: { status: 409, title: "Insufficient balance" },
  UPSTREAM_UNAVAILABLE: { status: 502, title: "The faucet is unavailable" },
  UPSTREAM_TIMEOUT: { status: 504, title: "The faucet timed out" },
  UPSTREAM_INVALID_RESPONSE: { status: 502, title: "The faucet sent an invalid reply" },
  STORE_UNAVAILABLE: { status: 503, title: "The credential store is unavailable" },
  // Every connection this replica may open was busy: retry after `Retry-After`.
  STORE_BUSY: { status: 503, title: "The credential store is busy" },
  // A corrupt store needs a person (it is never overwritten); retrying will not help, so not 503.
  STORE_CORRUPT: { status: 500, title: "The credential store is corrupt" },
  // The master key is missing or wrong: a configuration fix, not a retry, so not 503.
  STORE_LOCKED: { status: 500, title: "The credential store is locked (no or wrong master key)" },
  ROTATION_IN_PROGRESS: { status: 409, title: "A rotation is already in progress" },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    title: "Idempotency-Key reused with a different request",
  },
  // The stored state blocks the request until someone follows `recovery`: a conflict with the
  // resource's state, not a server bug.
  KEY_LOST: { status: 409, title: "The key was lost in an unfinished rotation" },
  CONFIG_INVALID: { status: 500, title: "rekey is misconfigured" },
  INTERNAL: { status: 500, title: "Internal error" },
};

/**
 * The RFC 9457 body rekey sends: `type`, `title`, `status`, `detail` and `request_id`, then
 * core's error vocabulary (`code`, `message`, `hint`, `principal`, cooldown and retry facts).
 */
export type ProblemBody = ErrorView & {
  type: string;
  title: string;
  status: number;
  detail: string;
  request_id?: string;
};

/** `urn:rekey:error:cooldown-active`, a stable identifier per code. */
export function problemType(code: ErrorCode): string {
  return `urn:rekey:error:${code.toLowerCase().replaceAll("_", "-")}`;
}

/** Options that override the table, for transport-level problems (413, 415, our own 401). */
export interface ProblemOverrides {
  status?: number;
  title?: string;
  type?: string;
  requestId?: string;
  headers?: Record<string, string>;
}

/**
 * Builds the RFC 9457 body for an error (anything thrown is INTERNAL unless a RekeyError),
 * with core's facts of it at `now`.
 */
export function problemBody(
  thrown: unknown,
  now: number,
  overrides: ProblemOverrides = {},
): ProblemBody {
  const facts = errorView(errorFacts(thrown, now));
  const mapped = HTTP_ERRORS[facts.code as ErrorCode];
  // INTERNAL messages may describe our own bug; the body stays generic, the log has it.
  const message = facts.code === "INTERNAL" ? "An unexpected error occurred." : facts.message;
  return {
    type: overrides.type ?? problemType(facts.code as ErrorCode),
    title: overrides.title ?? mapped.title,
    status: overrides.status ?? mapped.status,
    detail: message,
    ...(overrides.requestId === undefined ? {} : { request_id: overrides.requestId }),
    ...facts,
    message,
  };
}

/**
 * An `application/problem+json` response for an error, with `Retry-After` for cooldowns,
 * rate limits, rotations in progress and a busy store.
 */
export function problemResponse(
  thrown: unknown,
  now: number,
  overrides: ProblemOverrides = {},
): Response {
  const body = problemBody(thrown, now, overrides);
  // A plain object: @hono/node-server writes it as is, without building a fetch Headers.
  const headers: Record<string, string> = {
    "content-type": "application/problem+json",
    "cache-control": "no-store",
    ...overrides.headers,
  };
  if (overrides.requestId !== undefined) headers["x-request-id"] = overrides.requestId;
  if (
    (body.code === "COOLDOWN_ACTIVE" ||
      body.code === "RATE_LIMITED" ||
      body.code === "ROTATION_IN_PROGRESS" ||
      body.code === "STORE_BUSY") &&
    body.retry_after_seconds !== undefined
  ) {
    headers["retry-after"] = String(body.retry_after_seconds);
  }
  return new Response(JSON.stringify(body), { status: body.status, headers });
}

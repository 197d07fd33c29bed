import { type ErrorCode, type RekeyError, toRekeyError } from "@rekey/core";

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

/** The RFC 9457 body rekey sends, with core's `code` and key-free details. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  hint?: string;
  request_id?: string;
  cooldown_until?: string;
  retry_after_seconds?: number;
  recovery?: string;
  principal?: string;
  issues?: string[];
}

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

/** Seconds a client should wait before retrying, when the error says so. */
export function retryAfterSeconds(error: RekeyError, now: number): number | undefined {
  const { retryAfterSeconds: seconds, cooldownUntil } = error.details;
  if (typeof seconds === "number" && Number.isFinite(seconds)) {
    return Math.max(1, Math.ceil(seconds));
  }
  if (typeof cooldownUntil === "string") {
    const until = Date.parse(cooldownUntil);
    if (Number.isFinite(until)) return Math.max(1, Math.ceil((until - now) / 1000));
  }
  return undefined;
}

/** Builds the RFC 9457 body for an error (anything thrown is INTERNAL unless a RekeyError). */
export function problemBody(thrown: unknown, overrides: ProblemOverrides = {}): ProblemBody {
  const error = toRekeyError(thrown);
  const mapped = HTTP_ERRORS[error.code];
  const { details } = error;
  const body: ProblemBody = {
    type: overrides.type ?? problemType(error.code),
    title: overrides.title ?? mapped.title,
    status: overrides.status ?? mapped.status,
    // INTERNAL messages may describe our own bug; the detail stays generic, the log has it.
    detail: error.code === "INTERNAL" ? "An unexpected error occurred." : error.message,
    code: error.code,
  };
  if (error.hint !== undefined) body.hint = error.hint;
  if (overrides.requestId !== undefined) body.request_id = overrides.requestId;
  // Only known, key-free fields cross the wire; `details` is an open record.
  if (typeof details.cooldownUntil === "string") body.cooldown_until = details.cooldownUntil;
  if (typeof details.retryAfterSeconds === "number") {
    body.retry_after_seconds = details.retryAfterSeconds;
  }
  if (typeof details.recovery === "string") body.recovery = details.recovery;
  if (typeof details.principal === "string") body.principal = details.principal;
  if (Array.isArray(details.issues)) body.issues = details.issues.map(String);
  return body;
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
  const error = toRekeyError(thrown);
  const body = problemBody(error, overrides);
  // A plain object: @hono/node-server writes it as is, without building a fetch Headers.
  const headers: Record<string, string> = {
    "content-type": "application/problem+json",
    "cache-control": "no-store",
    ...overrides.headers,
  };
  if (overrides.requestId !== undefined) headers["x-request-id"] = overrides.requestId;
  if (
    error.code === "COOLDOWN_ACTIVE" ||
    error.code === "RATE_LIMITED" ||
    error.code === "ROTATION_IN_PROGRESS" ||
    error.code === "STORE_BUSY"
  ) {
    const seconds = retryAfterSeconds(error, now);
    if (seconds !== undefined) headers["retry-after"] = String(seconds);
  }
  return new Response(JSON.stringify(body), { status: body.status, headers });
}

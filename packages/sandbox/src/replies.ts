/** The closed set of `code` values on a `success:false` reply (see faucet-api.md). */
export const FAILURE_CODES = [
  "invalid_api_key",
  "forbidden",
  "not_found",
  "invalid_request",
  "cooldown_active",
  "insufficient_balance",
  "unknown_action",
  "rate_limited",
  "internal",
] as const;

/** One of {@link FAILURE_CODES}. */
export type FailureCode = (typeof FAILURE_CODES)[number];

/** A JSON reply body. */
export type ReplyBody = Record<string, unknown>;

/** What one action produced: the HTTP reply, and what it changed. */
export interface ActionResult {
  status: number;
  body: ReplyBody;
  /** The state changed, so it must be persisted before the reply goes out. */
  mutated: boolean;
  /** A key was rotated (counts in `stats().rotations`). */
  rotated: boolean;
}

/** A successful reply with `fields`. */
export function succeed(
  fields: ReplyBody,
  effects: { mutated?: boolean; rotated?: boolean } = {},
): ActionResult {
  return {
    status: 200,
    body: { success: true, ...fields },
    mutated: effects.mutated ?? false,
    rotated: effects.rotated ?? false,
  };
}

/**
 * A refusal. Business refusals travel as HTTP 200 (the public client reads fields such as
 * `cooldown_until` only from 2xx replies); transport-level ones pass their own status.
 */
export function refuse(
  code: FailureCode,
  error: string,
  extra: ReplyBody = {},
  status = 200,
): ActionResult {
  return {
    status,
    body: { success: false, error, code, ...extra },
    mutated: false,
    rotated: false,
  };
}

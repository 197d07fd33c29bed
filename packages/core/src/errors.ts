/**
 * The one error type of rekey, with a closed set of codes.
 *
 * Each code is mapped exhaustively (`Record<ErrorCode, ...>`), so adding a code fails the build
 * until the CLI exit codes, HTTP statuses and the model hints of `errorFacts` all handle it.
 * Front ends render an error through `errorFacts` (error-facts.ts), which reads `details`.
 * Messages never carry a raw key: pass fingerprints.
 */

import type { Principal } from "./principal.js";

export const ERROR_CODES = [
  "INVALID_INPUT",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "COOLDOWN_ACTIVE",
  "RATE_LIMITED",
  "INSUFFICIENT_BALANCE",
  "UPSTREAM_UNAVAILABLE",
  "UPSTREAM_TIMEOUT",
  "UPSTREAM_INVALID_RESPONSE",
  "STORE_UNAVAILABLE",
  "STORE_BUSY",
  "STORE_CORRUPT",
  "STORE_LOCKED",
  "ROTATION_IN_PROGRESS",
  "IDEMPOTENCY_KEY_REUSED",
  "KEY_LOST",
  "CONFIG_INVALID",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Extra, key-free facts an error carries for the front ends to render. */
export interface RekeyErrorDetails {
  /** COOLDOWN_ACTIVE: when the withdrawal block ends (ISO-8601 UTC). */
  cooldownUntil?: string;
  /** COOLDOWN_ACTIVE / RATE_LIMITED / STORE_BUSY: seconds until a retry may succeed. */
  retryAfterSeconds?: number;
  /** KEY_LOST: how to get back in. */
  recovery?: string;
  /**
   * The principal concerned: a {@link Principal}, or its label ("operator", "agent 7") as
   * older throw sites give it; `errorFacts` reads both.
   */
  principal?: string | Principal;
  /** The HTTP status of an upstream reply, when one was received. */
  upstreamStatus?: number;
  /**
   * NOT_FOUND: "profile" when the session itself holds no key (not one agent); "key" when the
   * principal is known but no key is held for it.
   */
  missing?: "profile" | "key";
  /**
   * FORBIDDEN: the operation refused, when it is not the rotation of a key ("list_agents";
   * "status", another principal's status read by an agent session).
   */
  operation?: "list_agents" | "status";
  /** Which request fields were rejected, for INVALID_INPUT. */
  issues?: string[];
  /**
   * INVALID_INPUT: arguments the call does not take. Refused rather than ignored, so a caller
   * who believes it asked for a dry run is not given a rotation.
   */
  unexpected?: string[];
  /** INVALID_INPUT with `unexpected`: the arguments the call does take (none: empty). */
  accepted?: string[];
  [key: string]: unknown;
}

export interface RekeyErrorOptions {
  /** A short, actionable next step for a person or a model. */
  hint?: string;
  details?: RekeyErrorDetails;
  cause?: unknown;
}

/** The error every rekey function throws; `code` is one of {@link ERROR_CODES}. */
export class RekeyError extends Error {
  override readonly name = "RekeyError";
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: RekeyErrorDetails;

  constructor(code: ErrorCode, message: string, options: RekeyErrorOptions = {}) {
    super(redactKeys(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint === undefined ? undefined : redactKeys(options.hint);
    this.details = options.details ?? {};
  }

  /** A JSON-safe view (no cause, no stack) for front ends that serialise errors. */
  toJSON(): { code: ErrorCode; message: string; hint?: string; details: RekeyErrorDetails } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      details: this.details,
    };
  }
}

/** True for a {@link RekeyError}, optionally of one of the given codes. */
export function isRekeyError(value: unknown, ...codes: ErrorCode[]): value is RekeyError {
  return value instanceof RekeyError && (codes.length === 0 || codes.includes(value.code));
}

/** Wraps anything thrown into a RekeyError (INTERNAL unless it already is one). */
export function toRekeyError(value: unknown): RekeyError {
  if (value instanceof RekeyError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new RekeyError("INTERNAL", `Unexpected error: ${message}`, { cause: value });
}

// Faucet keys are `lf_` + base64url; recovery codes and unknown real-service keys may differ,
// so any long token after `lf_` is masked as a defence in depth, on top of callers passing
// fingerprints only.
// Recovery codes (`lfr_` in the sandbox) are secrets too.
const KEY_PATTERN = /\b(lfr?)_[A-Za-z0-9_-]{16,}/g;

/** Replaces anything that looks like a faucet key or recovery code with `lf_…[redacted]`. */
export function redactKeys(text: string): string {
  return text.replace(KEY_PATTERN, "$1_…[redacted]");
}

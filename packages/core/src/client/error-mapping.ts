import { z } from "zod";
import type { Clock } from "../clock.js";
import { type ErrorCode, RekeyError, type RekeyErrorDetails } from "../errors.js";
import { lazily } from "../lazily.js";

/**
 * The sandbox's machine-readable `code` on every `success:false` reply, mapped to ours.
 * `unknown_action` means we sent something the faucet does not speak: the reply is not one we
 * can use, hence UPSTREAM_INVALID_RESPONSE rather than INVALID_INPUT (not the caller's fault).
 */
export const FAUCET_CODE_MAP: Readonly<Record<string, ErrorCode>> = Object.freeze({
  invalid_api_key: "UNAUTHORIZED",
  forbidden: "FORBIDDEN",
  not_found: "NOT_FOUND",
  invalid_request: "INVALID_INPUT",
  cooldown_active: "COOLDOWN_ACTIVE",
  insufficient_balance: "INSUFFICIENT_BALANCE",
  rate_limited: "RATE_LIMITED",
  unknown_action: "UPSTREAM_INVALID_RESPONSE",
  internal: "UPSTREAM_UNAVAILABLE",
});

/**
 * The real service sends only `error` text. These rules read it, first match wins; the order
 * matters ("Invalid API key" is UNAUTHORIZED, not INVALID_INPUT). Text that matches nothing
 * becomes INTERNAL with the (redacted) upstream text, so nothing is silently misread.
 */
export const ERROR_TEXT_RULES: ReadonlyArray<readonly [RegExp, ErrorCode]> = Object.freeze([
  [/invalid api key|unauthori[sz]ed|not authenticated/i, "UNAUTHORIZED"],
  [/cooldown/i, "COOLDOWN_ACTIVE"],
  [/not found/i, "NOT_FOUND"],
  [/rate limit|too many/i, "RATE_LIMITED"],
  [/insufficient/i, "INSUFFICIENT_BALANCE"],
  [/only operators|not allowed|permission|forbidden/i, "FORBIDDEN"],
  [/required|invalid|must be/i, "INVALID_INPUT"],
] as const);

/** The error code for a real-service `error` text; INTERNAL when no rule matches. Never throws. */
export function errorCodeFromText(text: string): ErrorCode {
  for (const [pattern, code] of ERROR_TEXT_RULES) {
    if (pattern.test(text)) return code;
  }
  return "INTERNAL";
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  UNAUTHORIZED:
    "The faucet rejected the key. If it was rotated, use the new key from the store; an operator can recover with the recovery code.",
  FORBIDDEN: "This key may not do that; operator-only actions need the operator key.",
  NOT_FOUND: "Check the agent id: it must belong to this operator.",
  COOLDOWN_ACTIVE: "Withdrawals are blocked after a rotation; wait until the cooldown ends.",
  RATE_LIMITED: "Too many requests; wait a little and try again.",
  INSUFFICIENT_BALANCE: "Fund the account or lower the amount.",
  UPSTREAM_UNAVAILABLE: "The faucet is not answering properly; try again later.",
  UPSTREAM_INVALID_RESPONSE: "The faucet sent a reply rekey cannot use; check the API URL.",
};

const RECOVER_REFUSED_HINT =
  "The faucet did not accept this recovery code, and nothing was changed. Pass the operator's code exactly as `rekey register` gave it (the file holds only the code).";

/** The hint rekey shows for an error code that came from the faucet, if it has one. */
export function hintFor(code: ErrorCode): string | undefined {
  return HINTS[code];
}

const MAX_UPSTREAM_TEXT = 300;
const RECOVERY_CODE_PATTERN = /lfr_[A-Za-z0-9_-]{16,}/g;

/**
 * Removes every secret we sent (api key, recovery code) from text the faucet sent back, then
 * shortens it. RekeyError also masks `lf_…` tokens, but a recovery code need not look like one.
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let scrubbed = text;
  for (const secret of secrets) {
    if (secret.length >= 4) scrubbed = scrubbed.split(secret).join("[redacted]");
  }
  // RekeyError masks `lf_` keys; recovery codes (`lfr_…` in the sandbox) we mask here, even
  // ones we did not send.
  scrubbed = scrubbed.replace(RECOVERY_CODE_PATTERN, "lfr_…[redacted]");
  // Control characters in upstream text would garble a terminal.
  scrubbed = scrubbed.replace(/\p{Cc}+/gu, " ").trim();
  return scrubbed.length > MAX_UPSTREAM_TEXT
    ? `${scrubbed.slice(0, MAX_UPSTREAM_TEXT)}…`
    : scrubbed;
}

// Built on the first refusal: most commands never read one.
const failureSchema = lazily(() => {
  const optionalText = z.string().optional().catch(undefined);
  return z.object({
    error: optionalText,
    message: optionalText,
    code: optionalText,
    cooldown_until: optionalText,
    seconds_remaining: z
      .union([
        z.number(),
        z
          .string()
          .regex(/^\d+(\.\d+)?$/)
          .transform(Number),
      ])
      .optional()
      .catch(undefined),
  });
});

/** What a business failure is about, for the error's message and details. */
export interface FailureContext {
  action: string;
  /** Raw secrets sent in the request; scrubbed from any upstream text. */
  secrets: readonly string[];
  clock: Clock;
  upstreamStatus?: number;
  /** Extra details to merge (e.g. outcomeUnknown). */
  details?: RekeyErrorDetails;
}

/**
 * Turns a `success:false` reply (any shape) into a RekeyError: the sandbox `code` when it is
 * one we know, else the `error` text through {@link ERROR_TEXT_RULES}. Never throws itself.
 * COOLDOWN_ACTIVE carries `details.cooldownUntil` and `details.retryAfterSeconds`.
 */
export function faucetFailureError(reply: unknown, context: FailureContext): RekeyError {
  const parsed = failureSchema().safeParse(
    typeof reply === "object" && reply !== null ? reply : {},
  );
  // Every field falls back on its own, so this only fails for a non-object, handled above.
  const failure: Partial<z.output<ReturnType<typeof failureSchema>>> = parsed.success
    ? parsed.data
    : {};
  const rawText = failure.error ?? failure.message ?? "";
  const text = scrubSecrets(rawText, context.secrets);
  const upstreamCode = failure.code;
  const mapped = upstreamCode === undefined ? undefined : FAUCET_CODE_MAP[upstreamCode];
  const code = mapped ?? errorCodeFromText(text);

  const details: RekeyErrorDetails = { ...context.details, action: context.action };
  if (context.upstreamStatus !== undefined) details.upstreamStatus = context.upstreamStatus;
  if (upstreamCode !== undefined) details.upstreamCode = upstreamCode.slice(0, 64);
  if (code === "COOLDOWN_ACTIVE") {
    Object.assign(
      details,
      cooldownDetails(failure.cooldown_until, failure.seconds_remaining, context.clock),
    );
  }

  const reason = text === "" ? "no reason given" : text;
  const message =
    code === "INTERNAL"
      ? `The faucet failed ${context.action} with an unrecognised error: ${reason}`
      : `The faucet refused ${context.action}: ${reason}`;
  // `recover` sends a recovery code, not a key: the key hint would send the user to the store.
  const hint =
    code === "UNAUTHORIZED" && context.action === "recover" ? RECOVER_REFUSED_HINT : hintFor(code);
  return new RekeyError(code, message, { details, ...(hint === undefined ? {} : { hint }) });
}

function cooldownDetails(
  cooldownUntil: string | undefined,
  secondsRemaining: number | undefined,
  clock: Clock,
): RekeyErrorDetails {
  const details: RekeyErrorDetails = {};
  const untilMs = cooldownUntil === undefined ? Number.NaN : Date.parse(cooldownUntil);
  if (Number.isFinite(untilMs)) details.cooldownUntil = new Date(untilMs).toISOString();
  if (secondsRemaining !== undefined && Number.isFinite(secondsRemaining)) {
    details.retryAfterSeconds = Math.max(0, Math.ceil(secondsRemaining));
  } else if (Number.isFinite(untilMs)) {
    details.retryAfterSeconds = Math.max(0, Math.ceil((untilMs - clock.now()) / 1000));
  }
  if (details.cooldownUntil === undefined && details.retryAfterSeconds !== undefined) {
    details.cooldownUntil = new Date(clock.now() + details.retryAfterSeconds * 1000).toISOString();
  }
  return details;
}

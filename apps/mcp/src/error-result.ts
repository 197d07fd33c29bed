import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { type ErrorCode, type RekeyError, redactKeys, toRekeyError } from "@rekey/core";

/** What a model needs to decide its next step after a refused call. */
type HintFor = (error: RekeyError) => string;

function minutesLeft(seconds: number): string {
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

// Core puts the seconds left on COOLDOWN_ACTIVE and RATE_LIMITED; the clock that counts them is
// core's (tests inject one), so this module never computes time itself.
function retryAfter(error: RekeyError): number | undefined {
  const seconds = error.details.retryAfterSeconds;
  return typeof seconds === "number" && Number.isFinite(seconds)
    ? Math.max(0, Math.ceil(seconds))
    : undefined;
}

/**
 * The MCP form of every error code: a hint the model can act on. One exhaustive table, so a
 * code added to core fails this build until it is mapped here.
 */
export const MCP_ERROR_HINTS: Record<ErrorCode, HintFor> = {
  INVALID_INPUT: () =>
    "Fix the arguments: agent_id is a positive whole number (at most 2147483647); omit it to act on this session's own key.",
  UNAUTHORIZED: () =>
    "The faucet rejected the stored key. Do not retry: ask the user to check the key with `rekey status` and `rekey doctor`, or to log in again with `rekey login`.",
  FORBIDDEN: () =>
    "Only an operator key may act on an agent's key. Omit agent_id to rotate this session's own key.",
  NOT_FOUND: (error) =>
    error.details.missing !== "profile"
      ? "No such agent for this operator, or no key is held for it. Call list_agents to see the agent ids this operator owns."
      : "This session holds no key. Do not call other tools: ask the user to store one with `rekey register` or `rekey login` (from @rekey/cli), or to start rekey-mcp with a profile (REKEY_PROFILE) or principal (REKEY_AS) that holds one.",
  COOLDOWN_ACTIVE: (error) => {
    const seconds = retryAfter(error);
    const until =
      typeof error.details.cooldownUntil === "string"
        ? ` (until ${error.details.cooldownUntil})`
        : "";
    const left = seconds === undefined ? "" : ` for another ${minutesLeft(seconds)}`;
    return `The key was rotated recently and its withdrawal cooldown runs${left}${until}. Do not rotate again now: another rotation would restart the cooldown. If the key is known to be compromised, tell the user to rotate it from the rekey CLI.`;
  },
  RATE_LIMITED: (error) => {
    const seconds = retryAfter(error);
    return seconds === undefined
      ? "The faucet is rate limiting. Wait a minute before trying again."
      : `The faucet is rate limiting. Wait ${seconds} seconds before trying again.`;
  },
  INSUFFICIENT_BALANCE: () =>
    "The balance is too low for this. Nothing was changed; ask the user to fund the wallet.",
  UPSTREAM_UNAVAILABLE: () =>
    "The faucet could not be reached. Nothing is lost: rekey records a rotation before calling the faucet and finishes it on the next call. Wait a minute, then call get_key_status before rotating again.",
  UPSTREAM_TIMEOUT: () =>
    "The faucet did not answer in time. The rotation may or may not have happened; rekey finishes it on the next call. Wait a minute, then call get_key_status before rotating again.",
  UPSTREAM_INVALID_RESPONSE: () =>
    "The faucet sent an unexpected reply, which was not treated as a success. Call get_key_status to see the current key before trying again.",
  STORE_UNAVAILABLE: () =>
    "The credential store cannot be read or written. Ask the user to run `rekey doctor` (check REKEY_HOME and file permissions). Do not rotate until it is fixed.",
  STORE_BUSY: (error) => {
    const seconds = retryAfter(error) ?? 1;
    return `The credential store is busy (every connection this server may open is in use). Nothing was changed; wait ${seconds} second${seconds === 1 ? "" : "s"} and call again.`;
  },
  STORE_CORRUPT: () =>
    "The credential store is damaged. Do not rotate: ask the user to run `rekey doctor`.",
  STORE_LOCKED: () =>
    "The credential store is encrypted and this server was not given its master key (or a wrong one). Nothing was changed. Do not rotate: ask the user to set REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD for rekey-mcp, or to restore the store's master.key.",
  ROTATION_IN_PROGRESS: () =>
    "Another rotation of this key is running right now. Wait a few seconds, then call get_key_status: it will show the new key.",
  IDEMPOTENCY_KEY_REUSED: () =>
    "A request id was reused for a different request. Retry the call once; if it repeats, report it to the user.",
  KEY_LOST: (error) => {
    const recovery = typeof error.details.recovery === "string" ? ` ${error.details.recovery}` : "";
    return `The old key no longer works and the new key could not be recovered.${recovery} For the operator, the user recovers access with the recovery code (\`rekey recover\`); for an agent, the operator rotates the agent's key (rotate_api_key with agent_id from an operator session).`;
  },
  CONFIG_INVALID: () =>
    "This server is misconfigured (profile, faucet URL or store). Ask the user to check REKEY_PROFILE, REKEY_STORE and REKEY_API_URL.",
  INTERNAL: () =>
    "An unexpected error happened. Do not retry blindly: call get_key_status, and ask the user to check the rekey-mcp log.",
};

/** The key-free, JSON-safe facts of an error that a model can read. */
export interface ToolErrorFacts {
  code: ErrorCode;
  message: string;
  hint: string;
  principal?: string;
  cooldown_until?: string;
  retry_after_seconds?: number;
  recovery?: string;
  issues?: string[];
}

/** Collects the facts of an error for the structured error block. */
export function toolErrorFacts(thrown: unknown): ToolErrorFacts {
  const error = toRekeyError(thrown);
  const facts: ToolErrorFacts = {
    code: error.code,
    message: redactKeys(error.message),
    hint: redactKeys(MCP_ERROR_HINTS[error.code](error)),
  };
  const { principal, cooldownUntil, recovery, issues } = error.details;
  const seconds = retryAfter(error);
  if (typeof principal === "string") facts.principal = principal;
  if (typeof cooldownUntil === "string") facts.cooldown_until = cooldownUntil;
  if (seconds !== undefined) facts.retry_after_seconds = seconds;
  if (typeof recovery === "string") facts.recovery = redactKeys(recovery);
  if (Array.isArray(issues)) facts.issues = issues.filter((issue) => typeof issue === "string");
  return facts;
}

/**
 * Turns anything thrown by core into an `isError` tool result: one text block, read by a model
 * as by a person. Its first line is `CODE: message`, then `hint: ...` and one `name: value`
 * line per other fact, the layout of a successful result's text. No `structuredContent`: the
 * SDK client validates it against the tool's success output schema, which an error does not
 * match.
 */
export function toToolError(thrown: unknown): CallToolResult {
  const { code, message, hint, ...facts } = toolErrorFacts(thrown);
  const lines = [
    `${code}: ${message}`,
    `hint: ${hint}`,
    ...Object.entries(facts).map(
      ([name, value]) => `${name}: ${typeof value === "object" ? JSON.stringify(value) : value}`,
    ),
  ];
  return { isError: true, content: [{ type: "text", text: lines.join("\n") }] };
}

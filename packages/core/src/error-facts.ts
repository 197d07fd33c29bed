import { type ErrorCode, type RekeyError, redactKeys, toRekeyError } from "./errors.js";
import { MAX_ID, type Principal } from "./principal.js";

/**
 * Who reads an error's hint: a person at a CLI or an HTTP client (the hint given where the
 * error was thrown, which names `rekey` commands), or a model calling MCP tools (a hint that
 * names tools and says whether to retry).
 */
export type ErrorAudience = "person" | "model";

/** The key-free facts of an error that every front end renders; times are core's clock's. */
export interface ErrorFacts {
  code: ErrorCode;
  message: string;
  hint?: string | undefined;
  /** Seconds before a retry may succeed (a cooldown, a rate limit, a busy store). */
  retryAfterSeconds?: number | undefined;
  /** COOLDOWN_ACTIVE: the withdrawal cooldown that refused the call. */
  cooldown?: { until: string; remainingSeconds: number } | undefined;
  principal?: Principal | undefined;
  /** KEY_LOST: how to get back in. */
  recovery?: string | undefined;
  /** INVALID_INPUT: which fields were rejected. */
  issues?: string[] | undefined;
  /** STORE_UNAVAILABLE / STORE_LOCKED / CONFIG_INVALID: the rescue file now holding the new key. */
  rescueFile?: string | undefined;
}

/**
 * The facts of anything thrown (INTERNAL unless a RekeyError), read from its typed `details`
 * at `now` (ms since the epoch, from the caller's clock). The CLI's, MCP's and HTTP's error
 * output only format these.
 */
export function errorFacts(
  thrown: unknown,
  now: number,
  options: { audience?: ErrorAudience } = {},
): ErrorFacts {
  const error = toRekeyError(thrown);
  const { details } = error;
  const seconds = details.retryAfterSeconds;
  // Seconds the thrower counted on its own clock (tests inject one) win over `now`.
  const counted =
    typeof seconds === "number" && Number.isFinite(seconds)
      ? Math.max(0, Math.ceil(seconds))
      : undefined;
  const until = typeof details.cooldownUntil === "string" ? details.cooldownUntil : undefined;
  const untilMs = until === undefined ? Number.NaN : Date.parse(until);
  const cooldown =
    until === undefined || !Number.isFinite(untilMs)
      ? undefined
      : {
          until,
          remainingSeconds:
            error.code === "COOLDOWN_ACTIVE" && counted !== undefined
              ? counted
              : Math.max(0, Math.ceil((untilMs - now) / 1000)),
        };
  const left = counted ?? cooldown?.remainingSeconds;
  const retryAfterSeconds = left === undefined ? undefined : Math.max(1, left);
  const hint =
    options.audience === "model" ? MODEL_HINTS[error.code](error, retryAfterSeconds) : error.hint;
  return {
    code: error.code,
    message: redactKeys(error.message),
    hint: hint === undefined ? undefined : redactKeys(hint),
    retryAfterSeconds,
    cooldown,
    principal: principalOf(details.principal),
    recovery: typeof details.recovery === "string" ? redactKeys(details.recovery) : undefined,
    issues: Array.isArray(details.issues)
      ? details.issues
          .filter((issue): issue is string => typeof issue === "string")
          // zod names an unrecognised field in its issue: a key sent as a field name.
          .map(redactKeys)
      : undefined,
    rescueFile: typeof details.rescueFile === "string" ? details.rescueFile : undefined,
  };
}

/** A principal from `details.principal`: a Principal, or its label "operator" / "agent 7". */
function principalOf(value: unknown): Principal | undefined {
  if (typeof value === "object" && value !== null) {
    const candidate = value as Partial<{ kind: string; agentId: number }>;
    if (candidate.kind === "operator") return { kind: "operator" };
    if (candidate.kind === "agent" && isAgentId(candidate.agentId))
      return { kind: "agent", agentId: candidate.agentId };
    return undefined;
  }
  if (value === "operator") return { kind: "operator" };
  const match = typeof value === "string" ? /^agent (\d+)$/.exec(value) : null;
  const id = match ? Number(match[1]) : undefined;
  return isAgentId(id) ? { kind: "agent", agentId: id } : undefined;
}

function isAgentId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= MAX_ID;
}

function minutesLeft(seconds: number): string {
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

/** The hint for a model, from the error and the seconds before a retry may succeed. */
type ModelHint = (error: RekeyError, retryAfterSeconds: number | undefined) => string;

const NO_KEY_IN_SESSION =
  "This session holds no key. Do not call other tools: ask the user to store one with `rekey register` or `rekey login` (from @rekey/cli), or to start rekey-mcp with a profile (REKEY_PROFILE) or principal (REKEY_AS) that holds one.";

/**
 * The hint a model acts on, per code, fitted to the call by the error's typed details. One
 * exhaustive table, so a code added to core fails this build until it is mapped here.
 */
const MODEL_HINTS: Record<ErrorCode, ModelHint> = {
  INVALID_INPUT: (error) =>
    Array.isArray(error.details.accepted) && error.details.accepted.length === 0
      ? "Call it again with no arguments: it takes none. get_key_status takes agent_id for one agent's key."
      : Array.isArray(error.details.unexpected)
        ? "Call it again with agent_id or no arguments at all: it takes nothing else, and there is no dry run: rotate_api_key rotates at once. get_key_status shows the key and its cooldown without changing anything."
        : `Fix the arguments: agent_id is a positive whole number (at most ${MAX_ID}); omit it to act on this session's own key.`,
  UNAUTHORIZED: () =>
    "The faucet rejected the stored key. Do not retry: ask the user to check the key with `rekey status` and `rekey doctor`, or to log in again with `rekey login`.",
  FORBIDDEN: (error) => {
    if (error.details.operation === "list_agents") {
      const principal = principalOf(error.details.principal);
      const who = principal?.kind === "agent" ? `agent ${principal.agentId}` : "an agent";
      return `Only an operator session may list agents; this session acts as ${who}. Do not retry: get_key_status, whoami and rotate_api_key without arguments act on this session's own key. To manage agents, ask the user to start rekey-mcp with the operator's profile.`;
    }
    if (error.details.operation === "status") {
      return "Only an operator session may read another key's status; this session acts as an agent. Do not retry with agent_id: call get_key_status without agent_id for this session's own key. To see other keys, ask the user to start rekey-mcp with the operator's profile.";
    }
    return "Only an operator key may act on an agent's key. Omit agent_id to rotate this session's own key.";
  },
  NOT_FOUND: (error) => {
    const { missing } = error.details;
    const principal = principalOf(error.details.principal);
    // No key for the session (or for its operator, which list_agents needs): pointing to
    // list_agents would only fail the same way.
    if (missing === "profile" || (missing === "key" && principal?.kind !== "agent"))
      return NO_KEY_IN_SESSION;
    if (missing === "key")
      return `No key is held for ${principal?.kind === "agent" ? `agent ${principal.agentId}` : "this agent"}. An operator session stores one by rotating it (rotate_api_key with agent_id); list_agents shows which agents have a key.`;
    return "No such agent for this operator, or no key is held for it. Call list_agents to see the agent ids this operator owns.";
  },
  COOLDOWN_ACTIVE: (error, seconds) => {
    const until =
      typeof error.details.cooldownUntil === "string"
        ? ` (until ${error.details.cooldownUntil})`
        : "";
    const left = seconds === undefined ? "" : ` for another ${minutesLeft(seconds)}`;
    return `The key was rotated recently and its withdrawal cooldown runs${left}${until}. Do not rotate again now: another rotation would restart the cooldown. If the key is known to be compromised, tell the user to rotate it from the rekey CLI.`;
  },
  RATE_LIMITED: (_error, seconds) =>
    seconds === undefined
      ? "The faucet is rate limiting. Wait a minute before trying again."
      : `The faucet is rate limiting. Wait ${seconds} seconds before trying again.`,
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
  STORE_BUSY: (_error, seconds = 1) =>
    `The credential store is busy (every connection this server may open is in use). Nothing was changed; wait ${seconds} second${seconds === 1 ? "" : "s"} and call again.`,
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

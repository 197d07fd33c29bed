import { z } from "zod";
import { type Clock, systemClock } from "../clock.js";
import { type ErrorCode, RekeyError, type RekeyErrorDetails } from "../errors.js";
import { agentIdSchema } from "../principal.js";
import {
  backoffDelayMs,
  DEFAULT_RETRY,
  parseRetryAfter,
  type RetryOptions,
  realSleep,
  type Sleep,
} from "./backoff.js";
import { validateBaseUrl } from "./base-url.js";
import { faucetFailureError, hintFor } from "./error-mapping.js";
import {
  balanceReply,
  clockReply,
  createAgentReply,
  fundAgentReply,
  listAgentsReply,
  recoverReply,
  registerReply,
  rotationReply,
  whoamiReply,
  withdrawReply,
} from "./reply-schemas.js";
import { type RawReply, sendJson } from "./transport.js";

/** How to reach the faucet. Only `baseUrl` is required. */
export interface FaucetClientOptions {
  /** The API endpoint; https, or http for loopback hosts only. See `resolveBaseUrl`. */
  baseUrl: string;
  /** Connect timeout per request (default 5000). */
  connectTimeoutMs?: number;
  /** Whole-request timeout, connect to last body byte (default 15000). */
  requestTimeoutMs?: number;
  /** Retries of read-only actions (default `{ attempts: 3, baseDelayMs: 100, maxDelayMs: 2000 }`). */
  retry?: Partial<RetryOptions>;
  /** Sent as User-Agent. */
  userAgent?: string;
  /** The wait between retries; tests pass one that does not wait. */
  sleep?: Sleep;
  /** The jitter source, in [0, 1). */
  random?: () => number;
  /** For cooldown arithmetic when the faucet sends only `cooldown_until`. */
  clock?: Clock;
}

/** Carried by the last argument of every client method. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of the generic {@link FaucetClient.call}. */
export interface RawCallOptions extends CallOptions {
  /** True only for read-only actions: they are retried, and a lost reply changes nothing. */
  idempotent?: boolean;
}

/** A `success:true` reply, as the faucet sent it (snake_case). */
export type FaucetReply = Readonly<Record<string, unknown>>;

export interface RegisterResult {
  operatorId: number;
  apiKey: string;
  recoveryCode: string;
}

export type WhoamiResult =
  | { type: "operator"; id: number; name: string; balanceSats: number; agentCount: number }
  | {
      type: "agent";
      id: number;
      name: string;
      balanceSats: number;
      operatorId: number;
      budgetLimitSats?: number;
    };

export interface CreateAgentResult {
  agentId: number;
  apiKey: string;
  name: string;
}

export interface AgentSummary {
  id: number;
  name: string;
  balanceSats: number;
  isActive: boolean;
}

export interface FundAgentResult {
  operatorBalance: number;
  agentBalance: number;
  transferred: number;
}

/** What a key rotation returned. `apiKey` is the new raw key: store it, never print it. */
export interface RotationReply {
  apiKey: string;
  message?: string;
  /** ISO-8601 UTC end of the withdrawal cooldown, when the faucet said. */
  cooldownUntil?: string;
  /** True only when the reply echoed our `request_id`: the faucet deduplicates repeats. */
  requestIdHonoured: boolean;
}

export interface RecoverResult {
  operatorId: number;
  apiKey: string;
  cooldownUntil?: string;
  requestIdHonoured: boolean;
}

export interface WithdrawResult {
  amountSats: number;
  feeSats: number;
  newBalance: number;
  paymentHash: string;
}

/**
 * A client of the Lightning Faucet agent API.
 *
 * Every method can throw RekeyError UPSTREAM_UNAVAILABLE, UPSTREAM_TIMEOUT (also on abort,
 * with `details.aborted`), UPSTREAM_INVALID_RESPONSE, RATE_LIMITED, INVALID_INPUT, and the
 * faucet's refusals: UNAUTHORIZED, FORBIDDEN, NOT_FOUND, COOLDOWN_ACTIVE, INSUFFICIENT_BALANCE,
 * or INTERNAL for an unrecognised refusal. On actions that change state, an error after the
 * request may have reached the faucet has `details.outcomeUnknown: true`.
 * Read-only methods (whoami, getBalance, listAgents) retry; the others never do.
 */
export interface FaucetClient {
  /** The validated endpoint this client talks to. */
  readonly baseUrl: string;
  /** POSTs `{ action, ...body }` and returns the `success:true` reply. */
  call(
    action: string,
    body: Record<string, unknown>,
    options?: RawCallOptions,
  ): Promise<FaucetReply>;
  /** Creates an operator account. The result holds the raw key and recovery code. */
  register(input?: { name?: string; email?: string } & CallOptions): Promise<RegisterResult>;
  whoami(apiKey: string, options?: CallOptions): Promise<WhoamiResult>;
  getBalance(apiKey: string, options?: CallOptions): Promise<{ balanceSats: number }>;
  /** Operator key only. The result holds the agent's raw key. */
  createAgent(
    apiKey: string,
    input: { name: string; description?: string; budgetLimitSats?: number } & CallOptions,
  ): Promise<CreateAgentResult>;
  /** Operator key only. */
  listAgents(apiKey: string, options?: CallOptions): Promise<AgentSummary[]>;
  /** Operator key only: moves sats from the operator to one of its agents. */
  fundAgent(
    apiKey: string,
    input: { agentId: number; amountSats: number } & CallOptions,
  ): Promise<FundAgentResult>;
  /**
   * Rotates the caller's own key; the old key dies at once. Pass `requestId` so a repeat after
   * a lost reply returns the same new key where the faucet supports it (`requestIdHonoured`).
   */
  regenerateOperatorKey(
    apiKey: string,
    input?: { requestId?: string } & CallOptions,
  ): Promise<RotationReply>;
  /** Operator key only: rotates one of its agents' keys. */
  regenerateAgentKey(
    apiKey: string,
    input: { agentId: number; requestId?: string } & CallOptions,
  ): Promise<RotationReply>;
  /** Issues a new operator key from the recovery code (starts the 60-minute cooldown). */
  recover(
    recoveryCode: string,
    input?: { requestId?: string } & CallOptions,
  ): Promise<RecoverResult>;
  /** Pays out; COOLDOWN_ACTIVE after a rotation, INSUFFICIENT_BALANCE beyond the balance. */
  withdraw(
    apiKey: string,
    input: { invoice?: string; amountSats?: number } & CallOptions,
  ): Promise<WithdrawResult>;
  /** Sandbox only: adds test funds to an operator; returns the new balance. */
  sandboxCredit(
    apiKey: string,
    amountSats: number,
    options?: CallOptions,
  ): Promise<{ balanceSats: number }>;
  /** Sandbox only (test clock): moves the faucet's clock forward; returns its new time. */
  sandboxAdvanceClock(seconds: number, options?: CallOptions): Promise<{ now: string }>;
}

const READ_ONLY = { idempotent: true } as const;
const STATE_CHANGING = { idempotent: false } as const;
const RETRYABLE = new Set(["UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT", "RATE_LIMITED"]);

const positiveMs = z.number().int().positive().max(2_147_483_647);
const optionsSchema = z.object({
  connectTimeoutMs: positiveMs.default(5000),
  requestTimeoutMs: positiveMs.default(15_000),
  retry: z
    .object({
      attempts: z.number().int().min(1).max(10).default(DEFAULT_RETRY.attempts),
      baseDelayMs: z.number().int().nonnegative().max(60_000).default(DEFAULT_RETRY.baseDelayMs),
      maxDelayMs: z.number().int().nonnegative().max(600_000).default(DEFAULT_RETRY.maxDelayMs),
    })
    .default({ ...DEFAULT_RETRY }),
  userAgent: z.string().min(1).max(200).default("rekey"),
});

const apiKeyInput = z
  .string()
  .trim()
  .min(1, "the API key is empty")
  .max(256, "the API key is too long");
const amountInput = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const requestIdInput = z.string().min(1).max(128).optional();

function checkInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => `${what}: ${issue.message}`);
  throw new RekeyError(
    "INVALID_INPUT",
    `Invalid ${what}: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    {
      details: { issues },
    },
  );
}

/**
 * Builds a faucet client. Cheap: node's HTTP client is loaded and a keep-alive agent made on the
 * first call, and agents are shared per origin by every client in the process.
 * @throws RekeyError CONFIG_INVALID for a bad base URL (http is allowed only for loopback
 *   hosts) or out-of-range timeouts/retry settings.
 */
export function createFaucetClient(options: FaucetClientOptions): FaucetClient {
  const url = validateBaseUrl(options.baseUrl);
  const parsedOptions = optionsSchema.safeParse({
    connectTimeoutMs: options.connectTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    retry: options.retry === undefined ? undefined : { ...options.retry },
    userAgent: options.userAgent,
  });
  if (!parsedOptions.success) {
    throw new RekeyError("CONFIG_INVALID", "Invalid faucet client options", {
      details: {
        issues: parsedOptions.error.issues.map(
          (issue) => `${issue.path.join(".")}: ${issue.message}`,
        ),
      },
    });
  }
  const settings = parsedOptions.data;
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;

  async function attempt(
    action: string,
    payload: string,
    secrets: readonly string[],
    idempotent: boolean,
    signal: AbortSignal | undefined,
  ): Promise<FaucetReply> {
    const raw = await sendJson({
      url,
      body: payload,
      userAgent: settings.userAgent,
      connectTimeoutMs: settings.connectTimeoutMs,
      requestTimeoutMs: settings.requestTimeoutMs,
      signal,
      action,
      idempotent,
    });
    return interpretReply(raw, { action, secrets, idempotent, clock });
  }

  /** A read-only action whose body is only the caller's key (retried like every read). */
  async function readWithKey<Schema extends z.ZodType>(
    action: string,
    schema: Schema,
    apiKey: string,
    signal: AbortSignal | undefined,
  ): Promise<z.output<Schema>> {
    const reply = await call(action, withKey(apiKey), { ...READ_ONLY, signal });
    return parseReply(schema, reply, action, true);
  }

  async function call(
    action: string,
    body: Record<string, unknown>,
    callOptions: RawCallOptions = {},
  ): Promise<FaucetReply> {
    const idempotent = callOptions.idempotent === true;
    const { signal } = callOptions;
    const payload = JSON.stringify({ action, ...body });
    // Anything secret we send is scrubbed from any text the faucet sends back.
    const secrets = [body.api_key, body.recovery_code].filter(
      (value): value is string => typeof value === "string",
    );
    const attempts = idempotent ? settings.retry.attempts : 1;
    for (let index = 0; ; index += 1) {
      try {
        return await attempt(action, payload, secrets, idempotent, signal);
      } catch (error) {
        if (!(error instanceof RekeyError) || !RETRYABLE.has(error.code)) throw error;
        if (index + 1 >= attempts || error.details.aborted === true) throw error;
        const waitMs = backoffDelayMs(
          index,
          settings.retry,
          random,
          error.details.retryAfterSeconds,
        );
        if (waitMs === undefined) throw error;
        try {
          await sleep(waitMs, signal);
        } catch (abortReason) {
          throw new RekeyError("UPSTREAM_TIMEOUT", `Request ${action} aborted`, {
            details: { action, aborted: true },
            cause: abortReason,
          });
        }
      }
    }
  }

  const withKey = (apiKey: string) => ({ api_key: checkInput(apiKeyInput, apiKey, "API key") });
  const agentIdOf = (value: unknown) => checkInput(agentIdSchema, value, "agent id");
  const amountOf = (value: unknown, what: string) => checkInput(amountInput, value, what);

  function toRotationReply(
    reply: z.output<ReturnType<typeof rotationReply>>,
    requestId: string | undefined,
  ): RotationReply {
    return {
      apiKey: reply.apiKey,
      ...(reply.message === undefined ? {} : { message: reply.message }),
      ...(reply.cooldownUntil === undefined ? {} : { cooldownUntil: reply.cooldownUntil }),
      requestIdHonoured: requestId !== undefined && reply.echoedRequestId === requestId,
    };
  }

  return {
    baseUrl: url.href,
    call,

    async register(input = {}) {
      const { signal } = input;
      const body: Record<string, unknown> = {};
      if (input.name !== undefined) body.name = input.name;
      if (input.email !== undefined) body.email = input.email;
      const reply = await call("register", body, { ...STATE_CHANGING, signal });
      return parseReply(registerReply(), reply, "register", false);
    },

    whoami: (apiKey, { signal } = {}) => readWithKey("whoami", whoamiReply(), apiKey, signal),

    getBalance: (apiKey, { signal } = {}) =>
      readWithKey("get_balance", balanceReply(), apiKey, signal),

    async createAgent(apiKey, input) {
      const { signal } = input;
      const body: Record<string, unknown> = { ...withKey(apiKey), name: input.name };
      if (input.description !== undefined) body.description = input.description;
      if (input.budgetLimitSats !== undefined) {
        body.budget_limit_sats = amountOf(input.budgetLimitSats, "budget limit");
      }
      const reply = await call("create_agent", body, { ...STATE_CHANGING, signal });
      return parseReply(createAgentReply(), reply, "create_agent", false);
    },

    listAgents: (apiKey, { signal } = {}) =>
      readWithKey("list_agents", listAgentsReply(), apiKey, signal),

    async fundAgent(apiKey, input) {
      const { signal } = input;
      const body = {
        ...withKey(apiKey),
        agent_id: agentIdOf(input.agentId),
        amount_sats: amountOf(input.amountSats, "amount"),
      };
      const reply = await call("fund_agent", body, { ...STATE_CHANGING, signal });
      return parseReply(fundAgentReply(), reply, "fund_agent", false);
    },

    async regenerateOperatorKey(apiKey, input = {}) {
      const { signal } = input;
      const requestId = checkInput(requestIdInput, input.requestId, "request id");
      const body: Record<string, unknown> = withKey(apiKey);
      if (requestId !== undefined) body.request_id = requestId;
      const reply = await call("regenerate_operator_key", body, { ...STATE_CHANGING, signal });
      const parsed = parseReply(rotationReply(), reply, "regenerate_operator_key", false);
      return toRotationReply(parsed, requestId);
    },

    async regenerateAgentKey(apiKey, input) {
      const { signal } = input;
      const requestId = checkInput(requestIdInput, input.requestId, "request id");
      const body: Record<string, unknown> = {
        ...withKey(apiKey),
        agent_id: agentIdOf(input.agentId),
      };
      if (requestId !== undefined) body.request_id = requestId;
      const reply = await call("regenerate_agent_key", body, { ...STATE_CHANGING, signal });
      const parsed = parseReply(rotationReply(), reply, "regenerate_agent_key", false);
      return toRotationReply(parsed, requestId);
    },

    async recover(recoveryCode, input = {}) {
      const { signal } = input;
      const requestId = checkInput(requestIdInput, input.requestId, "request id");
      const body: Record<string, unknown> = {
        recovery_code: checkInput(apiKeyInput, recoveryCode, "recovery code"),
      };
      if (requestId !== undefined) body.request_id = requestId;
      const reply = await call("recover", body, { ...STATE_CHANGING, signal });
      const parsed = parseReply(recoverReply(), reply, "recover", false);
      return {
        operatorId: parsed.operatorId,
        apiKey: parsed.apiKey,
        ...(parsed.cooldownUntil === undefined ? {} : { cooldownUntil: parsed.cooldownUntil }),
        requestIdHonoured: requestId !== undefined && parsed.echoedRequestId === requestId,
      };
    },

    async withdraw(apiKey, input) {
      const { signal } = input;
      const body: Record<string, unknown> = withKey(apiKey);
      if (input.invoice !== undefined) body.invoice = input.invoice;
      if (input.amountSats !== undefined) body.amount_sats = amountOf(input.amountSats, "amount");
      if (body.invoice === undefined && body.amount_sats === undefined) {
        throw new RekeyError("INVALID_INPUT", "withdraw needs an invoice or an amount");
      }
      const reply = await call("withdraw", body, { ...STATE_CHANGING, signal });
      return parseReply(withdrawReply(), reply, "withdraw", false);
    },

    async sandboxCredit(apiKey, amountSats, { signal } = {}) {
      const body = { ...withKey(apiKey), amount_sats: amountOf(amountSats, "amount") };
      const reply = await call("sandbox_credit", body, { ...STATE_CHANGING, signal });
      return parseReply(balanceReply(), reply, "sandbox_credit", false);
    },

    async sandboxAdvanceClock(seconds, { signal } = {}) {
      const body = { seconds: amountOf(seconds, "seconds") };
      const reply = await call("sandbox_advance_clock", body, { ...STATE_CHANGING, signal });
      return parseReply(clockReply(), reply, "sandbox_advance_clock", false);
    },
  };
}

interface ReplyContext {
  action: string;
  secrets: readonly string[];
  idempotent: boolean;
  clock: Clock;
}

function unknownOutcome(idempotent: boolean): RekeyErrorDetails {
  return idempotent ? {} : { outcomeUnknown: true };
}

function invalidReply(
  context: ReplyContext,
  what: string,
  details: RekeyErrorDetails = {},
  cause?: unknown,
): RekeyError {
  return new RekeyError(
    "UPSTREAM_INVALID_RESPONSE",
    `The faucet's reply to ${context.action} ${what}`,
    {
      details: { action: context.action, ...details },
      ...hintOption("UPSTREAM_INVALID_RESPONSE"),
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/**
 * Classifies one HTTP reply: returns the `success:true` object, or throws the RekeyError for
 * its status or its `success:false` body. A 2xx that is not readable counts as "may have acted".
 */
function interpretReply(raw: RawReply, context: ReplyContext): FaucetReply {
  const { status } = raw;
  const statusDetails: RekeyErrorDetails = { upstreamStatus: status };

  if (status === 429) {
    const retryAfterSeconds = parseRetryAfter(raw.retryAfter, context.clock.now());
    return throwing(
      new RekeyError("RATE_LIMITED", `The faucet rate-limited ${context.action}`, {
        details: {
          action: context.action,
          ...statusDetails,
          ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        },
        ...hintOption("RATE_LIMITED"),
      }),
    );
  }
  if (status >= 500) {
    return throwing(
      new RekeyError(
        "UPSTREAM_UNAVAILABLE",
        `The faucet failed ${context.action} (HTTP ${status})`,
        {
          // A 5xx may come from a proxy after the faucet acted.
          details: {
            action: context.action,
            ...statusDetails,
            ...unknownOutcome(context.idempotent),
          },
          ...hintOption("UPSTREAM_UNAVAILABLE"),
        },
      ),
    );
  }

  const body = parseJsonObject(raw.text);
  if (status === 400 && body !== undefined && typeof body.code === "string") {
    return throwing(
      faucetFailureError(body, {
        action: context.action,
        secrets: context.secrets,
        clock: context.clock,
        upstreamStatus: status,
      }),
    );
  }
  if (status < 200 || status >= 300) {
    return throwing(invalidReply(context, `came with unexpected HTTP ${status}`, statusDetails));
  }
  if (body === undefined) {
    return throwing(
      invalidReply(context, "is not a JSON object", {
        ...statusDetails,
        ...unknownOutcome(context.idempotent),
      }),
    );
  }
  if (body.success === true) return body;
  if (body.success === false) {
    return throwing(
      faucetFailureError(body, {
        action: context.action,
        secrets: context.secrets,
        clock: context.clock,
        upstreamStatus: status,
      }),
    );
  }
  return throwing(
    invalidReply(context, "has no success flag", {
      ...statusDetails,
      ...unknownOutcome(context.idempotent),
    }),
  );
}

function hintOption(code: ErrorCode): { hint?: string } {
  const hint = hintFor(code);
  return hint === undefined ? {} : { hint };
}

function throwing(error: RekeyError): never {
  throw error;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses a `success:true` reply with its action's schema.
 * @throws RekeyError UPSTREAM_INVALID_RESPONSE naming the bad fields (never their values), with
 *   `details.outcomeUnknown` on state-changing actions: the faucet said it acted.
 */
function parseReply<Schema extends z.ZodType>(
  schema: Schema,
  reply: FaucetReply,
  action: string,
  idempotent: boolean,
): z.output<Schema> {
  const parsed = schema.safeParse(reply);
  if (parsed.success) return parsed.data;
  const fields = [
    ...new Set(parsed.error.issues.map((issue) => issue.path.join(".") || "(reply)")),
  ];
  const missingKey = fields.includes("api_key");
  const what = missingKey
    ? "carried no usable key"
    : `did not have the expected fields (${fields.join(", ")})`;
  return throwing(
    new RekeyError("UPSTREAM_INVALID_RESPONSE", `The faucet's reply to ${action} ${what}`, {
      details: { action, issues: fields, ...unknownOutcome(idempotent) },
      // zod 4 issues carry no input values, so the cause holds no key.
      cause: parsed.error,
      ...(missingKey
        ? {
            hint: "The faucet may have issued a key rekey did not receive; check with whoami and recover if needed.",
          }
        : hintOption("UPSTREAM_INVALID_RESPONSE")),
    }),
  );
}

import { z } from "zod";
import { lazily } from "../lazily.js";

/**
 * zod schemas of the faucet's success replies (snake_case on the wire, camelCase out).
 * Unknown extra fields are ignored. The real service is loosely typed, so whole numbers may
 * also arrive as digit strings, and booleans as 0/1.
 *
 * Each reply's schema is built on first use (`lazily`): a command makes one or two kinds of
 * call, and building all of them cost every command that loads the client ~1 ms.
 */

const wholeNumber = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d{1,16}$/)
    .transform(Number),
]);

const flag = z.union([
  z.boolean(),
  z.literal(0).transform(() => false),
  z.literal(1).transform(() => true),
]);

/** A key or code the faucet issued: a non-empty string, whitespace trimmed. */
const issuedSecret = z.string().trim().min(1);

// A lenient ISO instant: the reply that carries it also carries a new key, which must never be
// lost over a date in an odd format. Unreadable dates become `undefined`.
// `.optional()` first, or zod 4 requires the key to be present.
const lenientInstant = z
  .unknown()
  .optional()
  .transform((value) => parseInstant(value));

/** Parses an instant; a date-time without a zone is read as UTC. */
export function parseInstant(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  let text = value.trim();
  if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) {
    text = `${text.replace(" ", "T")}Z`;
  }
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** Longest upstream text (a name, a message) kept from a faucet reply. */
export const MAX_UPSTREAM_NAME = 100;

/**
 * Makes text the faucet chose (an agent's name, a message) safe to show: control and format
 * characters (newlines, terminal escapes, bidi overrides, zero-width marks) become one space and
 * the text is cut to {@link MAX_UPSTREAM_NAME} characters. Anyone who can name an agent chooses
 * this text; it reaches terminals and an AI model's context. Never throws.
 */
export function sanitizeUpstreamText(text: string): string {
  const clean = text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, " ").trim();
  return clean.length > MAX_UPSTREAM_NAME ? `${clean.slice(0, MAX_UPSTREAM_NAME)}…` : clean;
}

/** A name or message from the faucet, sanitised by {@link sanitizeUpstreamText}. */
const upstreamText = z.string().transform(sanitizeUpstreamText);

// `.optional()` before `.transform()`: without it zod 4 treats the key as required.
const optionalText = z.string().optional().catch(undefined);
const optionalUpstreamText = upstreamText.optional().catch(undefined);

export const registerReply = lazily(() =>
  z
    .object({ operator_id: wholeNumber, api_key: issuedSecret, recovery_code: issuedSecret })
    .transform((reply) => ({
      operatorId: reply.operator_id,
      apiKey: reply.api_key,
      recoveryCode: reply.recovery_code,
    })),
);

const whoamiOperator = lazily(() =>
  z
    .object({
      type: z.literal("operator"),
      id: wholeNumber,
      name: upstreamText,
      balance_sats: wholeNumber,
      agent_count: wholeNumber,
    })
    .transform((reply) => ({
      type: "operator" as const,
      id: reply.id,
      name: reply.name,
      balanceSats: reply.balance_sats,
      agentCount: reply.agent_count,
    })),
);

const whoamiAgent = lazily(() =>
  z
    .object({
      type: z.literal("agent"),
      id: wholeNumber,
      name: upstreamText,
      balance_sats: wholeNumber,
      operator_id: wholeNumber,
      budget_limit_sats: wholeNumber.nullish(),
    })
    .transform((reply) => ({
      type: "agent" as const,
      id: reply.id,
      name: reply.name,
      balanceSats: reply.balance_sats,
      operatorId: reply.operator_id,
      ...(reply.budget_limit_sats == null ? {} : { budgetLimitSats: reply.budget_limit_sats }),
    })),
);

export const whoamiReply = lazily(() => z.union([whoamiOperator(), whoamiAgent()]));

export const balanceReply = lazily(() =>
  z
    .object({ balance_sats: wholeNumber })
    .transform((reply) => ({ balanceSats: reply.balance_sats })),
);

export const createAgentReply = lazily(() =>
  z
    .object({
      agent_id: wholeNumber,
      api_key: issuedSecret.optional().catch(undefined),
      agent_api_key: issuedSecret.optional().catch(undefined),
      name: upstreamText,
    })
    .transform((reply, context) => {
      const apiKey = reply.api_key ?? reply.agent_api_key;
      if (apiKey === undefined) {
        context.addIssue({ code: "custom", path: ["api_key"], message: "no key in the reply" });
        return z.NEVER;
      }
      return { agentId: reply.agent_id, apiKey, name: reply.name };
    }),
);

export const listAgentsReply = lazily(() =>
  z
    .object({
      agents: z.array(
        z.object({
          id: wholeNumber,
          name: upstreamText,
          balance_sats: wholeNumber,
          is_active: flag,
        }),
      ),
    })
    .transform((reply) =>
      reply.agents.map((agent) => ({
        id: agent.id,
        name: agent.name,
        balanceSats: agent.balance_sats,
        isActive: agent.is_active,
      })),
    ),
);

// The public client also reads `new_operator_balance`, `new_agent_balance`, `amount_transferred`.
export const fundAgentReply = lazily(() =>
  z
    .object({
      operator_balance: wholeNumber.optional(),
      agent_balance: wholeNumber.optional(),
      transferred: wholeNumber.optional(),
      new_operator_balance: wholeNumber.optional(),
      new_agent_balance: wholeNumber.optional(),
      amount_transferred: wholeNumber.optional(),
    })
    .transform((reply, context) => {
      const operatorBalance = reply.operator_balance ?? reply.new_operator_balance;
      const agentBalance = reply.agent_balance ?? reply.new_agent_balance;
      const transferred = reply.transferred ?? reply.amount_transferred;
      if (
        operatorBalance === undefined ||
        agentBalance === undefined ||
        transferred === undefined
      ) {
        context.addIssue({
          code: "custom",
          message: "operator_balance, agent_balance and transferred are required",
        });
        return z.NEVER;
      }
      return { operatorBalance, agentBalance, transferred };
    }),
);

/**
 * A rotation reply. Only the key is required: the old key is already dead when this arrives,
 * so a missing `message` or an odd `cooldown_until` must not throw the new key away.
 */
export const rotationReply = lazily(() =>
  z
    .object({
      api_key: issuedSecret.optional().catch(undefined),
      new_api_key: issuedSecret.optional().catch(undefined),
      message: optionalUpstreamText,
      cooldown_until: lenientInstant,
      request_id: optionalText,
    })
    .transform((reply, context) => {
      const apiKey = reply.api_key ?? reply.new_api_key;
      if (apiKey === undefined) {
        context.addIssue({ code: "custom", path: ["api_key"], message: "no key in the reply" });
        return z.NEVER;
      }
      return {
        apiKey,
        message: reply.message,
        cooldownUntil: reply.cooldown_until,
        echoedRequestId: reply.request_id,
      };
    }),
);

export const recoverReply = lazily(() =>
  z
    .object({
      operator_id: wholeNumber,
      api_key: issuedSecret,
      cooldown_until: lenientInstant,
      request_id: optionalText,
    })
    .transform((reply) => ({
      operatorId: reply.operator_id,
      apiKey: reply.api_key,
      cooldownUntil: reply.cooldown_until,
      echoedRequestId: reply.request_id,
    })),
);

export const withdrawReply = lazily(() =>
  z
    .object({
      amount_sats: wholeNumber,
      fee_sats: wholeNumber,
      new_balance: wholeNumber,
      payment_hash: upstreamText,
    })
    .transform((reply) => ({
      amountSats: reply.amount_sats,
      feeSats: reply.fee_sats,
      newBalance: reply.new_balance,
      paymentHash: reply.payment_hash,
    })),
);

export const clockReply = lazily(() =>
  z.object({ now: lenientInstant }).transform((reply, context) => {
    if (reply.now === undefined) {
      context.addIssue({ code: "custom", path: ["now"], message: "no time in the reply" });
      return z.NEVER;
    }
    return { now: reply.now };
  }),
);

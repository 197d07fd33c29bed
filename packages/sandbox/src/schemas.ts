import { z } from "zod";

/** Limits on request fields; anything beyond is `invalid_request` and changes nothing. */
export const LIMITS = {
  nameLength: 100,
  emailLength: 254,
  descriptionLength: 500,
  invoiceLength: 2000,
  apiKeyLength: 256,
  requestIdLength: 128,
  /** Ids are 32-bit signed integers in the real service's database. */
  maxId: 2 ** 31 - 1,
  /** 21 million bitcoin, in satoshis: no amount can be larger. */
  maxSats: 2_100_000_000_000_000,
  /** Ten years: enough for any cooldown or replay window test. */
  maxAdvanceSeconds: 315_360_000,
} as const;

const apiKey = z
  .string({ error: "api_key is required and must be a string" })
  .min(1, "api_key must not be empty")
  .max(LIMITS.apiKeyLength, `api_key must be at most ${LIMITS.apiKeyLength} characters`);

const name = z
  .string({ error: "name must be a string" })
  .trim()
  .min(1, "name must not be empty")
  .max(LIMITS.nameLength, `name must be at most ${LIMITS.nameLength} characters`);

const positiveInteger = (field: string, max: number) =>
  z
    .number({ error: `${field} is required and must be a number` })
    .int(`${field} must be a whole number`)
    .positive(`${field} must be positive`)
    .max(max, `${field} must be at most ${max}`);

const agentId = positiveInteger("agent_id", LIMITS.maxId);
const amountSats = positiveInteger("amount_sats", LIMITS.maxSats);

const requestId = z
  .string({ error: "request_id must be a string" })
  .min(1, "request_id must not be empty")
  .max(LIMITS.requestIdLength, `request_id must be at most ${LIMITS.requestIdLength} characters`)
  .optional();

/** One schema per action: the body fields besides `action`. Unknown fields are ignored. */
export const actionSchemas = {
  register: z.object({
    name: name.optional(),
    email: z
      .email({ error: "email must be an email address" })
      .max(LIMITS.emailLength, `email must be at most ${LIMITS.emailLength} characters`)
      .optional(),
  }),
  whoami: z.object({ api_key: apiKey }),
  get_balance: z.object({ api_key: apiKey }),
  create_agent: z.object({
    api_key: apiKey,
    name,
    description: z
      .string({ error: "description must be a string" })
      .max(
        LIMITS.descriptionLength,
        `description must be at most ${LIMITS.descriptionLength} characters`,
      )
      .optional(),
    budget_limit_sats: positiveInteger("budget_limit_sats", LIMITS.maxSats).optional(),
  }),
  list_agents: z.object({ api_key: apiKey }),
  fund_agent: z.object({ api_key: apiKey, agent_id: agentId, amount_sats: amountSats }),
  regenerate_operator_key: z.object({ api_key: apiKey, request_id: requestId }),
  regenerate_agent_key: z.object({ api_key: apiKey, agent_id: agentId, request_id: requestId }),
  recover: z.object({
    recovery_code: z
      .string({ error: "recovery_code is required and must be a string" })
      .min(1, "recovery_code must not be empty")
      .max(LIMITS.apiKeyLength, `recovery_code must be at most ${LIMITS.apiKeyLength} characters`),
    request_id: requestId,
  }),
  withdraw: z
    .object({
      api_key: apiKey,
      invoice: z
        .string({ error: "invoice must be a string" })
        .min(1, "invoice must not be empty")
        .max(LIMITS.invoiceLength, `invoice must be at most ${LIMITS.invoiceLength} characters`)
        .optional(),
      amount_sats: amountSats.optional(),
    })
    .refine((body) => body.invoice !== undefined || body.amount_sats !== undefined, {
      error: "withdraw needs an invoice or amount_sats",
    }),
  sandbox_credit: z.object({ api_key: apiKey, amount_sats: amountSats }),
  sandbox_advance_clock: z.object({
    seconds: positiveInteger("seconds", LIMITS.maxAdvanceSeconds),
  }),
} as const;

/** Every action the sandbox serves. */
export type ActionName = keyof typeof actionSchemas;

/** The parsed body of `action`. */
export type ActionInput<A extends ActionName> = z.output<(typeof actionSchemas)[A]>;

/** The names of every action, in protocol-table order. */
export const ACTION_NAMES = Object.keys(actionSchemas) as ActionName[];

/** True when `value` names an action the sandbox serves. */
export function isActionName(value: string): value is ActionName {
  return Object.hasOwn(actionSchemas, value);
}

import { agentIdSchema } from "@rekey/core";
import { z } from "zod";

/**
 * Input and output schemas of the tools. Field names are snake_case like the faucet's wire
 * protocol and the public `lightning-wallet-mcp` server that `rotate_api_key` mirrors.
 */

const fingerprintField = z
  .string()
  .describe("The key's public fingerprint (fp:…); never the key itself.");
const isoInstant = z.string().describe("ISO-8601 UTC instant.");

const AGENT_ID_DESCRIPTION = "Agent ID (operators only). Omit to act on this session's own key.";
const { $schema: _dialect, ...agentIdJsonSchema } = z.toJSONSchema(agentIdSchema, {
  target: "draft-7",
});

/**
 * `agent_id`: optional, operators only; omitted means this session's own key.
 *
 * Advertised as core's `agentIdSchema` (a positive integer up to 2^31-1) but accepted as-is and
 * checked by core's `agent()` in the handler: a malformed id then comes back like every other
 * failure, an INVALID_INPUT result with a hint, rather than as the SDK's protocol-level
 * validation text without a code.
 */
export const agentIdInput = {
  agent_id: z
    .unknown()
    .optional()
    .meta({ ...agentIdJsonSchema, description: AGENT_ID_DESCRIPTION }),
};

export const rotateOutput = {
  principal: z.string().describe('Whose key was rotated: "operator" or "agent 7".'),
  fingerprint: fingerprintField,
  old_fingerprint: fingerprintField,
  cooldown_until: isoInstant.describe("When the withdrawal cooldown this rotation started ends."),
  cooldown_minutes: z.union([z.literal(60), z.literal(30)]),
  verified: z.boolean().describe("The new key answered whoami as the same principal."),
  request_id: z.string(),
  shared: z
    .boolean()
    .describe("Another caller had just rotated this key; this is that rotation's result."),
  session_switched: z.boolean().describe("This session now uses the new key."),
  message: z.string(),
  new_api_key: z
    .string()
    .optional()
    .describe("The new raw key: only when the server runs with REKEY_MCP_REVEAL_KEYS=1."),
};

export const keyStatusOutput = {
  principal: z.string(),
  profile: z.string(),
  has_key: z.boolean(),
  key_source: z.enum(["store", "env"]).optional(),
  fingerprint: fingerprintField.optional(),
  name: z.string().optional(),
  saved_at: isoInstant.optional(),
  key_age_seconds: z.number().optional(),
  last_rotation: z
    .object({
      rotated_at: isoInstant,
      request_id: z.string(),
      old_fingerprint: fingerprintField,
      new_fingerprint: fingerprintField,
      verified: z.boolean(),
      surface: z.string(),
    })
    .optional(),
  cooldown_until: isoInstant.optional(),
  cooldown_remaining_seconds: z.number().describe("0 when no cooldown is running."),
  unfinished_rotation: z
    .object({
      request_id: z.string(),
      started_at: isoInstant,
      phase: z.enum(["requested", "stored"]),
    })
    .optional()
    .describe("A rotation that started and is not finished yet; the next call resolves it."),
};

export const listAgentsOutput = {
  agents: z.array(
    z.object({
      agent_id: z.number().int(),
      name: z.string(),
      balance_sats: z.number(),
      is_active: z.boolean(),
      has_key: z.boolean().describe("Whether the credential store holds a key for this agent."),
      fingerprint: fingerprintField.optional(),
      cooldown_until: isoInstant.optional(),
      cooldown_remaining_seconds: z.number(),
      last_rotated_at: isoInstant.optional(),
    }),
  ),
};

export const whoamiOutput = {
  principal: z.string(),
  type: z.enum(["operator", "agent"]),
  id: z.number().int(),
  name: z.string(),
  balance_sats: z.number(),
  fingerprint: fingerprintField,
  profile: z.string(),
  agent_count: z.number().int().optional(),
  operator_id: z.number().int().optional(),
  budget_limit_sats: z.number().optional(),
};

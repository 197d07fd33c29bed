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
  fingerprint: fingerprintField.describe(
    "Fingerprint (fp:…) of the new key, now in the credential store; never the key itself.",
  ),
  old_fingerprint: fingerprintField.describe(
    "Fingerprint (fp:…) of the key this rotation replaced, which stopped working at once.",
  ),
  cooldown_until: isoInstant.describe(
    "ISO-8601 UTC instant when the withdrawal cooldown this rotation started ends.",
  ),
  cooldown_minutes: z
    .union([z.literal(60), z.literal(30)])
    .describe("Length of that cooldown: 60 minutes for the operator, 30 for an agent."),
  verified: z.boolean().describe("The new key answered whoami as the same principal."),
  request_id: z
    .string()
    .describe("Id of this rotation in the audit log (`rekey history`) and the faucet's logs."),
  shared: z
    .boolean()
    .describe("Another caller had just rotated this key; this is that rotation's result."),
  session_switched: z.boolean().describe("This session now uses the new key."),
  message: z
    .string()
    .describe("One paragraph for the user: what happened, where the key is, the cooldown."),
  new_api_key: z
    .string()
    .optional()
    .describe("The new raw key: only when the server runs with REKEY_MCP_REVEAL_KEYS=1."),
  deliveries: z
    .array(
      z.object({
        target: z.string().describe('The delivery target\'s id, e.g. "lightning-wallet-1".'),
        status: z
          .enum(["delivered", "failed", "current", "deferred"])
          .describe("failed: the rotation still stands; rekey retries it with back-off."),
        fingerprint: fingerprintField.describe("Fingerprint of the key delivered."),
        description: z.string().describe("Where: a file, a command, a store or a URL."),
        error: z.string().optional().describe("Why it failed, with the error code."),
      }),
    )
    .optional()
    .describe("Where the new key was delivered (files, services), when targets are configured."),
};

export const keyStatusOutput = {
  principal: z.string().describe('Whose key this is: "operator" or "agent 7".'),
  profile: z.string().describe("The credential profile this session uses."),
  has_key: z.boolean().describe("Whether a key is available for this principal."),
  key_source: z
    .enum(["store", "env"])
    .optional()
    .describe("Where the key comes from: the credential store, or REKEY_API_KEY (env)."),
  fingerprint: fingerprintField.optional(),
  name: z.string().optional().describe("The principal's name at the faucet."),
  saved_at: isoInstant.optional().describe("ISO-8601 UTC instant the key was stored."),
  key_age_seconds: z.number().optional().describe("Seconds since the key was stored."),
  last_rotation: z
    .object({
      rotated_at: isoInstant.describe("ISO-8601 UTC instant of the rotation."),
      request_id: z.string().describe("Id of that rotation in the audit log (`rekey history`)."),
      old_fingerprint: fingerprintField.describe(
        "Fingerprint of the key that rotation replaced (dead since).",
      ),
      new_fingerprint: fingerprintField.describe("Fingerprint of the key that rotation issued."),
      verified: z.boolean().describe("The issued key answered whoami as the same principal."),
      surface: z.string().describe("Which front end rotated it: cli, mcp, http or library."),
    })
    .optional()
    .describe(
      "The last completed rotation of this key: when, its id, the fingerprints, by which front end.",
    ),
  cooldown_until: isoInstant
    .optional()
    .describe("ISO-8601 UTC instant when the running withdrawal cooldown ends."),
  cooldown_remaining_seconds: z
    .number()
    .describe("Seconds of withdrawal cooldown left; 0 when no cooldown is running."),
  unfinished_rotation: z
    .object({
      request_id: z.string().describe("Id of the unfinished rotation (its request_id upstream)."),
      started_at: isoInstant.describe("ISO-8601 UTC instant it started."),
      phase: z
        .enum(["requested", "stored"])
        .describe("requested: the faucet was asked; stored: the new key is stored, not verified."),
    })
    .optional()
    .describe("A rotation that started and is not finished yet; the next call resolves it."),
  deliveries: z
    .array(
      z.object({
        target: z.string().describe('The delivery target\'s id, e.g. "lightning-wallet-1".'),
        state: z
          .enum(["current", "stale", "failing"])
          .describe(
            "current: holds the key; stale: an older one; failing: the last attempt failed.",
          ),
        description: z.string().describe("Where: a file, a command, a store or a URL."),
        error: z.string().optional().describe("Why the last attempt failed, with the error code."),
      }),
    )
    .optional()
    .describe("Where the key is delivered (files, services), and whether each holds it."),
  due_at: isoInstant
    .optional()
    .describe(
      "ISO-8601 UTC instant when a scheduled rotation (`rekey policy`) will rotate this key next; absent without a rotation policy. The old key stops working then.",
    ),
  rotation_overdue: z
    .boolean()
    .optional()
    .describe("The key is past its scheduled rotation plus grace: tell the user."),
};

export const listAgentsOutput = {
  agents: z
    .array(
      z.object({
        agent_id: z.number().int().describe("The agent's id at the faucet (agent_id elsewhere)."),
        name: z.string().describe("The agent's name at the faucet (untrusted text)."),
        balance_sats: z.number().describe("The agent's balance in satoshis."),
        is_active: z.boolean().describe("Whether the faucet lists the agent as active."),
        has_key: z.boolean().describe("Whether the credential store holds a key for this agent."),
        fingerprint: fingerprintField
          .optional()
          .describe("Fingerprint of the agent key the store holds, if any."),
        cooldown_until: isoInstant
          .optional()
          .describe("ISO-8601 UTC instant the agent's withdrawal cooldown ends, when one runs."),
        cooldown_remaining_seconds: z
          .number()
          .describe("Seconds of the agent's withdrawal cooldown left; 0 when none runs."),
        last_rotated_at: isoInstant
          .optional()
          .describe("ISO-8601 UTC instant of the agent's last rotation the store knows of."),
      }),
    )
    .describe("The operator's agents, with each stored key's fingerprint and cooldown."),
};

export const whoamiOutput = {
  principal: z.string().describe('Who this session acts as: "operator" or "agent 7".'),
  type: z.enum(["operator", "agent"]).describe("The kind of principal."),
  id: z.number().int().describe("The principal's id at the faucet."),
  name: z.string().describe("The principal's name at the faucet."),
  balance_sats: z.number().describe("Balance in satoshis."),
  fingerprint: fingerprintField,
  profile: z.string().describe("The credential profile this session uses."),
  agent_count: z.number().int().optional().describe("Operators only: how many agents they own."),
  operator_id: z.number().int().optional().describe("Agents only: the id of their operator."),
  budget_limit_sats: z
    .number()
    .optional()
    .describe("Agents only: the spending limit their operator set, in satoshis."),
};

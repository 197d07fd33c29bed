import {
  agentIdSchema,
  agentListSchema,
  identitySchema,
  keyStatusSchema,
  rotationSchema,
} from "@rekey/core";
import { z } from "zod";

/**
 * Input and output schemas of the tools. Field names are snake_case like the faucet's wire
 * protocol and the public `lightning-wallet-mcp` server that `rotate_api_key` mirrors.
 */

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

/**
 * `agent_id` and nothing else, advertised with `additionalProperties: false`, but other
 * arguments are kept (not stripped, as a plain shape would) so the handler can refuse them
 * with INVALID_INPUT (unexpected-arguments.ts): a model that passes `dry_run: true` to
 * rotate_api_key must not get a rotation it took for a plan, nor one that writes `agentId` to
 * get_key_status this session's status back as if it were the agent's.
 */
const agentIdOnlyInput = z
  .object(agentIdInput)
  .catchall(z.unknown())
  .meta({ additionalProperties: false });

/** `rotate_api_key`'s input: see {@link agentIdOnlyInput}. */
export const rotateInput = agentIdOnlyInput;

/** `get_key_status`'s input: see {@link agentIdOnlyInput}. */
export const statusInput = agentIdOnlyInput;

/**
 * The input of `list_agents` and `whoami`: nothing, and anything given is kept to be refused
 * like {@link agentIdOnlyInput}'s extras. Without an input schema the SDK drops the arguments:
 * `whoami { agent_id: 7 }` answered for this session as if it were the agent.
 */
export const noInput = z.object({}).catchall(z.unknown()).meta({ additionalProperties: false });

// Outputs are core's JSON vocabulary (docs/json-vocabulary.md), the shapes the CLI's --json and
// the HTTP endpoint use too, plus what only a tool result says (`session_switched`, `message`).

export const rotateOutput = rotationSchema.extend({
  session_switched: z.boolean().describe("This session now uses the new key."),
  message: z
    .string()
    .describe("One paragraph for the user: what happened, where the key is, the cooldown."),
}).shape;

export const keyStatusOutput = keyStatusSchema.shape;

export const listAgentsOutput = agentListSchema.shape;

export const whoamiOutput = identitySchema.extend({
  profile: z.string().describe("The credential profile this session uses."),
}).shape;

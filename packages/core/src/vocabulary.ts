import { z } from "zod";
import { COOLDOWN_MINUTES } from "./cooldowns.js";
import type { DeliveryOutcome, DeliveryStatus } from "./delivery/delivery-journal.js";
import type {
  AgentStatus,
  Identity,
  KeyStatus,
  RotationPlan,
  RotationResult,
} from "./engine/types.js";
import type { ErrorFacts } from "./error-facts.js";
import { MAX_ID, type Principal } from "./principal.js";
import { describePolicy } from "./schedule/policy.js";

/**
 * The one JSON vocabulary of rekey's front ends: the CLI's `--json`, the MCP tools'
 * `structuredContent` and the HTTP endpoint's bodies use these shapes and field names
 * (snake_case, as on the faucet's wire and in the MCP tools' `agent_id` input). Each front end
 * may add fields of its own (the CLI's `schemaVersion` and `command`, MCP's `message`, HTTP's
 * RFC 9457 fields) but never renames or reshapes these. Documented in docs/json-vocabulary.md.
 *
 * The `*View` functions are the only way core's results become these shapes, so a raw key
 * reaches a view only where a caller asks for it by name (`rotationView(..., { revealKey })`).
 */

const fingerprint = z.string().describe("A key's public fingerprint (fp:…); never the key itself.");
const instant = z.string().describe("ISO-8601 UTC instant.");

/** `{ kind: "operator" }` or `{ kind: "agent", agent_id: 7 }`. */
export const principalSchema = z
  .object({
    kind: z.enum(["operator", "agent"]).describe("An operator, or one of its agents."),
    agent_id: z
      .number()
      .int()
      .positive()
      .max(MAX_ID)
      .optional()
      .describe("The agent's id at the faucet; present exactly when kind is agent."),
  })
  .describe('Whose key: { "kind": "operator" } or { "kind": "agent", "agent_id": 7 }.');

const label = z.string().describe('The principal for a person: "operator" or "agent 7".');

const deliveryError = z
  .object({
    code: z.string().describe("The rekey error code of the failure."),
    message: z.string().describe("The failure's message (key-free)."),
  })
  .describe("Why the delivery failed: a rekey error code and message.");

/** One delivery of a rotation's key to a target (never the key). */
export const deliveryOutcomeSchema = z.object({
  target: z.string().describe('The delivery target\'s id, e.g. "lightning-wallet-1".'),
  kind: z
    .enum(["lightning-wallet", "dotenv", "exec", "store", "webhook"])
    .describe("The kind of target."),
  description: z.string().describe("Where: a file, a command, a store or a URL."),
  status: z
    .enum(["delivered", "failed", "current", "deferred"])
    .describe(
      "delivered now; failed now (the rotation still stands; retried with back-off); current: held it already; deferred: backing off.",
    ),
  fingerprint: fingerprint.describe("Fingerprint of the key delivered."),
  error: deliveryError.optional(),
  next_attempt_at: instant.optional().describe("When the next attempt is due."),
});

/** Whether one delivery target holds the principal's current key. */
export const deliveryStatusSchema = z.object({
  target: z.string().describe('The delivery target\'s id, e.g. "lightning-wallet-1".'),
  kind: z
    .enum(["lightning-wallet", "dotenv", "exec", "store", "webhook"])
    .describe("The kind of target."),
  description: z.string().describe("Where: a file, a command, a store or a URL."),
  state: z
    .enum(["current", "stale", "failing"])
    .describe("current: holds the key; stale: an older one; failing: the last attempt failed."),
  delivered_fingerprint: fingerprint.optional().describe("Fingerprint of the key it holds."),
  at: instant.optional().describe("When the last attempt ended."),
  error: deliveryError.optional(),
  next_attempt_at: instant.optional().describe("When the next attempt is due."),
});

const cooldownMinutes = z
  .union([z.literal(COOLDOWN_MINUTES.operator), z.literal(COOLDOWN_MINUTES.agent)])
  .describe(
    `Length of the withdrawal cooldown a rotation starts: ${COOLDOWN_MINUTES.operator} minutes for the operator, ${COOLDOWN_MINUTES.agent} for an agent.`,
  );

/** A completed rotation: fingerprints, and the raw key only where a front end reveals it. */
export const rotationSchema = z.object({
  dry_run: z.literal(false).describe("false: the key was rotated (true in a plan)."),
  principal: principalSchema,
  label,
  old_fingerprint: fingerprint.describe(
    "Fingerprint of the key this rotation replaced, which stopped working at once.",
  ),
  fingerprint: fingerprint.describe("Fingerprint of the new key, now in the credential store."),
  rotated_at: instant,
  cooldown_until: instant.describe("When the withdrawal cooldown this rotation started ends."),
  cooldown_minutes: cooldownMinutes,
  verified: z.boolean().describe("The new key answered whoami as the same principal."),
  shared: z
    .boolean()
    .describe("Another caller had just rotated this key; this is that rotation's result."),
  request_id: z
    .string()
    .describe("Id of this rotation in the audit log (`rekey history`) and the faucet's logs."),
  api_key: z
    .string()
    .optional()
    .describe(
      "The new raw key: only where revealing was asked for (CLI --reveal, REKEY_MCP_REVEAL_KEYS=1).",
    ),
  deliveries: z
    .array(deliveryOutcomeSchema)
    .optional()
    .describe("Where the new key was delivered, when the principal has delivery targets."),
});

/** A dry run's plan: what a rotation would do now. */
export const rotationPlanSchema = z.object({
  dry_run: z.literal(true).describe("true: a plan; nothing was rotated."),
  principal: principalSchema,
  label,
  fingerprint: fingerprint.describe("Fingerprint of the current key."),
  action: z
    .enum(["regenerate_operator_key", "regenerate_agent_key"])
    .describe("The faucet action a rotation would call."),
  cooldown_minutes: cooldownMinutes,
  cooldown_would_end_at: instant.describe("When the cooldown would end if the key rotated now."),
  current_cooldown_until: instant.optional().describe("The cooldown running now, if any."),
  blocked_by_cooldown: z.boolean().describe("A rotation now would be refused (COOLDOWN_ACTIVE)."),
});

/** The status of one principal's key. */
export const keyStatusSchema = z.object({
  principal: principalSchema,
  label,
  profile: z.string().describe("The credential profile."),
  base_url: z.string().describe("The faucet's URL."),
  has_key: z.boolean().describe("Whether a key is available for this principal."),
  key_source: z
    .enum(["store", "env"])
    .optional()
    .describe("Where the key comes from: the credential store, or REKEY_API_KEY (env)."),
  fingerprint: fingerprint.optional(),
  name: z.string().optional().describe("The principal's name at the faucet."),
  saved_at: instant.optional().describe("When the key was stored."),
  key_age_seconds: z.number().optional().describe("Seconds since the key was stored."),
  last_rotation: z
    .object({
      request_id: z.string().describe("Id of that rotation in the audit log (`rekey history`)."),
      old_fingerprint: fingerprint.describe("Fingerprint of the key that rotation replaced."),
      new_fingerprint: fingerprint.describe("Fingerprint of the key that rotation issued."),
      rotated_at: instant.describe("When that rotation happened."),
      cooldown_until: instant.describe("When the cooldown that rotation started ends (or ended)."),
      verified: z.boolean().describe("The issued key answered whoami as the same principal."),
      surface: z.string().describe("Which front end rotated it: cli, mcp, http or library."),
    })
    .optional()
    .describe("The last completed rotation of this key."),
  cooldown_until: instant.optional().describe("When the running withdrawal cooldown ends."),
  cooldown_remaining_seconds: z
    .number()
    .describe("Seconds of withdrawal cooldown left; 0 when none runs."),
  pending_rotation: z
    .object({
      request_id: z.string().describe("Id of the unfinished rotation (its request_id upstream)."),
      started_at: instant.describe("When it started."),
      phase: z
        .enum(["requested", "stored"])
        .describe("requested: the faucet was asked; stored: the new key is stored, not verified."),
    })
    .optional()
    .describe("A rotation that started and is not finished yet; the next call resolves it."),
  key_lost: z
    .object({
      request_id: z.string().describe("The rotation that lost the key."),
      old_fingerprint: fingerprint.describe("Fingerprint of the key the faucet invalidated."),
      lost_at: instant.describe("When the loss was recorded."),
      recovery: z.string().describe("How to get back in."),
    })
    .optional()
    .describe("KEY_LOST: the key was rotated but its successor never reached the store."),
  deliveries: z
    .array(deliveryStatusSchema)
    .optional()
    .describe("The principal's delivery targets, when it has any."),
  schedule: z
    .object({
      policy: z
        .string()
        .describe('The rotation policy, e.g. "max-age 30d window daily 02:00-04:00".'),
      due_at: instant.describe("When the key reaches its max-age."),
      next_rotation_at: instant
        .optional()
        .describe("When a scheduled run rotates it next; absent: no window opens in nine days."),
      in_window: z.boolean().describe("Whether the policy's window is open now."),
      due: z.boolean().describe("The key is due for its scheduled rotation now."),
      overdue: z.boolean().describe("Past its scheduled rotation plus grace: tell the user."),
    })
    .optional()
    .describe("The rotation policy and where the key stands against it, when one is set."),
  store: z
    .object({
      kind: z.string().describe('The kind of store: "file", "postgres" or "memory".'),
      location: z.string().describe("Where it is (a directory or a URL without a password)."),
    })
    .describe("The credential store."),
});

/** Who a key belongs to, as the faucet answers `whoami`. */
export const identitySchema = z.object({
  principal: principalSchema,
  label,
  id: z.number().int().describe("The principal's id at the faucet."),
  name: z.string().describe("The principal's name at the faucet (untrusted text)."),
  balance_sats: z.number().describe("Balance in satoshis."),
  fingerprint,
  agent_count: z.number().int().optional().describe("Operators only: how many agents they own."),
  operator_id: z.number().int().optional().describe("Agents only: their operator's id."),
  budget_limit_sats: z
    .number()
    .optional()
    .describe("Agents only: the spending limit their operator set, in satoshis."),
});

/** One of the operator's agents, with what the store holds for it. */
export const agentSchema = z.object({
  agent_id: z.number().int().positive().describe("The agent's id at the faucet."),
  name: z.string().describe("The agent's name at the faucet (untrusted text)."),
  balance_sats: z.number().describe("The agent's balance in satoshis."),
  is_active: z.boolean().describe("Whether the faucet lists the agent as active."),
  has_key: z.boolean().describe("Whether the credential store holds a key for this agent."),
  fingerprint: fingerprint.optional().describe("Fingerprint of the stored key, if any."),
  cooldown_until: instant.optional().describe("When the agent's withdrawal cooldown ends."),
  cooldown_remaining_seconds: z
    .number()
    .describe("Seconds of the agent's withdrawal cooldown left; 0 when none runs."),
  last_rotated_at: instant.optional().describe("The agent's last rotation the store knows of."),
});

/** The operator's agents. */
export const agentListSchema = z.object({
  agents: z
    .array(agentSchema)
    .describe("The operator's agents, with each stored key's fingerprint and cooldown."),
});

/** A refused or failed call: core's error code and the facts a caller acts on. */
export const errorSchema = z.object({
  code: z.string().describe("One of @rekey/core's error codes, e.g. COOLDOWN_ACTIVE."),
  message: z.string().describe("What happened (key-free)."),
  hint: z.string().optional().describe("The next step for whoever made the call."),
  principal: principalSchema.optional(),
  cooldown_until: instant.optional().describe("When the withdrawal cooldown ends."),
  cooldown_remaining_seconds: z.number().optional().describe("Seconds of that cooldown left."),
  retry_after_seconds: z.number().int().optional().describe("Seconds before a retry may succeed."),
  recovery: z.string().optional().describe("KEY_LOST: how to get back in."),
  issues: z.array(z.string()).optional().describe("INVALID_INPUT: which fields were rejected."),
});

export type PrincipalView = z.infer<typeof principalSchema>;
export type DeliveryOutcomeView = z.infer<typeof deliveryOutcomeSchema>;
export type DeliveryStatusView = z.infer<typeof deliveryStatusSchema>;
export type RotationView = z.infer<typeof rotationSchema>;
export type RotationPlanView = z.infer<typeof rotationPlanSchema>;
export type KeyStatusView = z.infer<typeof keyStatusSchema>;
export type IdentityView = z.infer<typeof identitySchema>;
export type AgentView = z.infer<typeof agentSchema>;
export type AgentListView = z.infer<typeof agentListSchema>;
export type ErrorView = z.infer<typeof errorSchema>;

/** Drops undefined fields, so a view serialises and validates the same everywhere. */
function defined<T extends Record<string, unknown>>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as T;
}

export function principalView(principal: Principal): PrincipalView {
  return principal.kind === "operator"
    ? { kind: "operator" }
    : { kind: "agent", agent_id: principal.agentId };
}

export function deliveryOutcomeView(outcome: DeliveryOutcome): DeliveryOutcomeView {
  return defined({
    target: outcome.target,
    kind: outcome.kind,
    description: outcome.description,
    status: outcome.status,
    fingerprint: outcome.fingerprint,
    error: outcome.error && { code: outcome.error.code, message: outcome.error.message },
    next_attempt_at: outcome.nextAttemptAt,
  });
}

export function deliveryStatusView(status: DeliveryStatus): DeliveryStatusView {
  return defined({
    target: status.target,
    kind: status.kind,
    description: status.description,
    state: status.state,
    delivered_fingerprint: status.deliveredFingerprint,
    at: status.at,
    error: status.error && { code: status.error.code, message: status.error.message },
    next_attempt_at: status.nextAttemptAt,
  });
}

/**
 * A completed rotation. Field by field on purpose: `apiKey` (present only when core was asked
 * to reveal it) is copied only when the caller passes `revealKey`.
 */
export function rotationView(
  result: RotationResult,
  options: { revealKey?: boolean } = {},
): RotationView {
  return defined({
    dry_run: false as const,
    principal: principalView(result.principal),
    label: result.label,
    old_fingerprint: result.oldFingerprint,
    fingerprint: result.newFingerprint,
    rotated_at: result.rotatedAt,
    cooldown_until: result.cooldownUntil,
    cooldown_minutes: result.cooldownMinutes,
    verified: result.verified,
    shared: result.shared,
    request_id: result.requestId,
    api_key: options.revealKey === true ? result.apiKey : undefined,
    deliveries: result.deliveries?.map(deliveryOutcomeView),
  });
}

export function rotationPlanView(plan: RotationPlan): RotationPlanView {
  return defined({
    dry_run: true as const,
    principal: principalView(plan.principal),
    label: plan.label,
    fingerprint: plan.currentFingerprint,
    action: plan.action,
    cooldown_minutes: plan.cooldownMinutes,
    cooldown_would_end_at: plan.cooldownWouldEndAt,
    current_cooldown_until: plan.currentCooldownUntil,
    blocked_by_cooldown: plan.blockedByCooldown,
  });
}

export function keyStatusView(status: KeyStatus): KeyStatusView {
  const last = status.lastRotation;
  const pending = status.pendingRotation;
  const lost = status.keyLost;
  const schedule = status.schedule;
  return defined({
    principal: principalView(status.principal),
    label: status.label,
    profile: status.profile,
    base_url: status.baseUrl,
    has_key: status.hasKey,
    key_source: status.keySource,
    fingerprint: status.fingerprint,
    name: status.name,
    saved_at: status.savedAt,
    key_age_seconds: status.keyAgeSeconds,
    last_rotation: last && {
      request_id: last.requestId,
      old_fingerprint: last.oldFingerprint,
      new_fingerprint: last.newFingerprint,
      rotated_at: last.rotatedAt,
      cooldown_until: last.cooldownUntil,
      verified: last.verified,
      surface: last.surface,
    },
    cooldown_until: status.cooldownUntil,
    cooldown_remaining_seconds: status.cooldownRemainingSeconds,
    pending_rotation: pending && {
      request_id: pending.requestId,
      started_at: pending.startedAt,
      phase: pending.phase,
    },
    key_lost: lost && {
      request_id: lost.requestId,
      old_fingerprint: lost.oldFingerprint,
      lost_at: lost.lostAt,
      recovery: lost.recovery,
    },
    deliveries: status.deliveries?.map(deliveryStatusView),
    schedule:
      schedule &&
      defined({
        policy: describePolicy(schedule.policy),
        due_at: schedule.dueAt,
        next_rotation_at: schedule.nextRotationAt,
        in_window: schedule.inWindow,
        due: schedule.due,
        overdue: schedule.overdue,
      }),
    store: { kind: status.store.kind, location: status.store.location },
  });
}

export function identityView(identity: Identity & { fingerprint: string }): IdentityView {
  const principal: Principal =
    identity.type === "operator" ? { kind: "operator" } : { kind: "agent", agentId: identity.id };
  return defined({
    principal: principalView(principal),
    label: identity.type === "operator" ? "operator" : `agent ${identity.id}`,
    id: identity.id,
    name: identity.name,
    balance_sats: identity.balanceSats,
    fingerprint: identity.fingerprint,
    agent_count: identity.type === "operator" ? identity.agentCount : undefined,
    operator_id: identity.type === "agent" ? identity.operatorId : undefined,
    budget_limit_sats: identity.type === "agent" ? identity.budgetLimitSats : undefined,
  });
}

export function agentView(entry: AgentStatus): AgentView {
  return defined({
    agent_id: entry.id,
    name: entry.name,
    balance_sats: entry.balanceSats,
    is_active: entry.isActive,
    has_key: entry.hasKey,
    fingerprint: entry.fingerprint,
    cooldown_until: entry.cooldownUntil,
    cooldown_remaining_seconds: entry.cooldownRemainingSeconds,
    last_rotated_at: entry.lastRotatedAt,
  });
}

export function agentListView(agents: AgentStatus[]): AgentListView {
  return { agents: agents.map(agentView) };
}

/** The facts of an error (see {@link ErrorFacts}) in the vocabulary. */
export function errorView(facts: ErrorFacts): ErrorView {
  return defined({
    code: facts.code,
    message: facts.message,
    hint: facts.hint,
    principal: facts.principal && principalView(facts.principal),
    cooldown_until: facts.cooldown?.until,
    cooldown_remaining_seconds: facts.cooldown?.remainingSeconds,
    retry_after_seconds: facts.retryAfterSeconds,
    recovery: facts.recovery,
    issues: facts.issues,
  });
}

import { z } from "zod";
import { COOLDOWN_MINUTES } from "./cooldowns.js";
import { MAX_ID } from "./principal.js";
import { SCHEDULE_EVENT_TYPES } from "./schedule/events.js";
import { AUDIT_ACTIONS, AUDIT_OUTCOMES } from "./store/types.js";

/**
 * The one JSON vocabulary of rekey's front ends: the CLI's `--json`, the MCP tools'
 * `structuredContent` and the HTTP endpoint's bodies use these shapes and field names
 * (snake_case, as on the faucet's wire and in the MCP tools' `agent_id` input). Each front end
 * may add fields of its own (the CLI's `schemaVersion` and `command`, MCP's `message`, HTTP's
 * RFC 9457 fields) but never renames or reshapes these. Documented in docs/json-vocabulary.md.
 *
 * The `*View` functions (vocabulary-views.ts, exported from here too) are the only way core's
 * results become these shapes, so a raw key reaches a view only where a caller asks for it by
 * name (`rotationView(..., { revealKey })`).
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
  operator_id: z
    .number()
    .int()
    .optional()
    .describe("A recovery's: the operator account the recovery code restored."),
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
  next_step: z
    .string()
    .optional()
    .describe(
      "No key is held (and no loss is shown): how to get one, e.g. `rekey recover` for an operator the store knows.",
    ),
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
  rescue_file: z
    .string()
    .optional()
    .describe(
      "The rescue file that now holds a new key the store refused (`rekey rescue import FILE`).",
    ),
});

export type PrincipalView = z.infer<typeof principalSchema>;

export type DeliveryOutcomeView = z.infer<typeof deliveryOutcomeSchema>;

export type DeliveryStatusView = z.infer<typeof deliveryStatusSchema>;

export type RotationView = z.infer<typeof rotationSchema>;

export type RotationPlanView = z.infer<typeof rotationPlanSchema>;

export type KeyStatusView = z.infer<typeof keyStatusSchema>;

export type RescuedKeyView = z.infer<typeof rescuedKeySchema>;

export type IdentityView = z.infer<typeof identitySchema>;

export type AgentView = z.infer<typeof agentSchema>;

export type AgentListView = z.infer<typeof agentListSchema>;

export type ErrorView = z.infer<typeof errorSchema>;

// The shapes of the maintenance commands: history, doctor and health, policies, scheduled
// runs, deliveries, login and import. Core names the principal of a stored record by a string
// ("operator:12", "agent:7", "operator"); here it is the principal object like everywhere else,
// with `operator_id` beside it when the record names its operator's id.

/** The account of a stored record: its principal, its label and, for an operator, its id. */
const recordShape = {
  principal: principalSchema,
  label,
  operator_id: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("Operators: the operator's id at the faucet, when the store records it."),
};

const recordError = z
  .object({ code: z.string(), message: z.string() })
  .describe("Why it failed: a rekey error code and a key-free message.");

/** One entry of the hash-chained audit log (`rekey history`, HTTP `/v1/events`). */
export const auditEntrySchema = z.object({
  seq: z.number().int().positive().describe("Position in the log, from 1."),
  at: instant,
  surface: z.enum(["cli", "mcp", "http", "library"]).describe("Which front end acted."),
  profile: z.string().describe("The profile the action was taken in."),
  ...recordShape,
  action: z.enum(AUDIT_ACTIONS).describe("What was done."),
  outcome: z
    .enum(AUDIT_OUTCOMES)
    .describe("How it ended; a delivery is pending, then success or failure."),
  old_fingerprint: fingerprint.optional().describe("The key before the action."),
  new_fingerprint: fingerprint.optional().describe("The key after the action."),
  cooldown_until: instant.optional().describe("The withdrawal cooldown a rotation started."),
  request_id: z.string().optional().describe("The rotation's request id (also the faucet's)."),
  error_code: z.string().optional().describe("A failure's rekey error code."),
  delivery_target: z.string().optional().describe("Deliveries: the target's id and description."),
  prev_hash: z.string().describe("SHA-256 hex of the previous entry (64 zeros for the first)."),
  hash: z.string().describe("SHA-256 hex of this entry: the log's hash chain."),
});

/** The audit log check of `rekey history --verify`. */
export const auditVerificationSchema = z.object({
  ok: z.boolean().describe("The hash chain is intact."),
  count: z.number().int().describe("Entries checked."),
  broken_at: z.number().int().optional().describe("The first entry that breaks the chain."),
  reason: z.string().optional().describe("Why it breaks there."),
});

/** `rekey history`: audit log entries, and the chain check when asked for. */
export const historySchema = z.object({
  entries: z.array(auditEntrySchema),
  verification: auditVerificationSchema.optional(),
});

/** The credential store's health (key-free). */
export const storeHealthSchema = z.object({
  ok: z.boolean().describe("No problem found."),
  kind: z.string().describe('The kind of store: "file", "postgres" or "memory".'),
  location: z.string().describe("Where it is (a directory or a URL without a password)."),
  problems: z.array(z.string()).describe("Problems found (file modes, leftovers), key-free."),
  encryption: z
    .object({
      state: z
        .enum(["encrypted", "clear"])
        .describe("encrypted: every stored key is sealed; clear: some are not (yet)."),
      clear_keys: z.number().int().describe("How many keys are stored in clear."),
      key_id: z.string().optional().describe("The id of the master key that seals new writes."),
      key_source: z
        .string()
        .optional()
        .describe("Where that master key comes from: a variable's name or a file path."),
      under_other_keys: z
        .number()
        .int()
        .optional()
        .describe(
          "How many keys are sealed under another master key than key_id (the next write seals them under key_id).",
        ),
    })
    .optional()
    .describe("Whether the keys are sealed at rest (stores that keep them on disk)."),
});

/** Whether the store reads and the faucet answers (`rekey doctor`). */
export const healthSchema = z.object({
  ok: z.boolean().describe("The store and the faucet are healthy."),
  store: storeHealthSchema.extend({
    readable: z.boolean().describe("The credential document reads (leftovers aside)."),
  }),
  upstream: z.object({
    ok: z.boolean().describe("The faucet answered."),
    base_url: z.string().describe("The faucet's URL."),
    error: z.string().optional().describe("Why it did not answer."),
  }),
});

/** What the faucet says of one stored key (`rekey doctor`). */
export const keyCheckSchema = z.object({
  ...recordShape,
  fingerprint,
  current: z
    .boolean()
    .describe("The record's current key (false: one the migration kept beside it)."),
  alive: z
    .boolean()
    .optional()
    .describe("true: the faucet accepts it; false: it rejects it; absent: not asked."),
  error: z.string().optional().describe("Why the faucet could not be asked."),
});

/** What resolving an unfinished rotation found (`rekey doctor --repair`). */
export const pendingResolutionSchema = z.object({
  principal: principalSchema,
  label,
  request_id: z.string().describe("The unfinished rotation."),
  outcome: z
    .enum(["recovered", "not_rotated", "verified", "key_lost"])
    .describe(
      "recovered: its key is now stored; not_rotated: it never happened; verified: finished; key_lost: see KEY_LOST.",
    ),
  new_fingerprint: fingerprint.optional(),
});

/** A stored record's delivery targets and where each stands. */
export const deliveryTargetsSchema = z.object({
  ...recordShape,
  targets: z.array(deliveryStatusSchema),
});

/** A principal's rotation policy and where its key stands against it (`rekey policy`). */
export const policyStatusSchema = z.object({
  ...recordShape,
  fingerprint: fingerprint.optional().describe("The current key, if the record holds one."),
  saved_at: instant.optional().describe("When the current key was stored."),
  policy: z
    .string()
    .describe('The policy as status shows it, e.g. "max-age 30d, window daily 02:00-04:00".'),
  rules: z
    .object({
      max_age_seconds: z.number().int().positive().describe("Rotate once the key is this old."),
      window: z.string().optional().describe("When rotations may run."),
      jitter_seconds: z.number().int().optional().describe("Spread of rotations in the window."),
      grace_seconds: z.number().int().optional().describe("How late counts as overdue."),
      set_at: instant.describe("When the policy was set."),
    })
    .describe("The policy's parts."),
  schedule: z
    .object({
      due_at: instant.describe("When the key reaches its max-age."),
      next_rotation_at: instant
        .optional()
        .describe("When a scheduled run rotates it next; absent: no window opens in nine days."),
      in_window: z.boolean().describe("Whether the policy's window is open now."),
      due: z.boolean().describe("Due for its scheduled rotation now."),
      overdue_at: instant.describe("When it counts as overdue: due plus grace."),
      overdue: z.boolean().describe("Past its scheduled rotation plus grace."),
    })
    .optional()
    .describe("Where the key stands; absent when the record holds no key."),
});

/** `rekey policy set|list|clear`. */
export const policyListSchema = z.object({
  action: z.enum(["set", "list", "clear"]),
  policies: z.array(policyStatusSchema),
});

const rotationOutcome = {
  old_fingerprint: fingerprint.optional().describe("The key before."),
  fingerprint: fingerprint.optional().describe("The new key, when it was rotated."),
  cooldown_until: instant.optional().describe("The withdrawal cooldown running or started."),
  error: recordError.optional(),
  deliveries: z.array(deliveryOutcomeSchema).optional(),
};

/** One principal of a scheduled run (`rekey rotate --due`). */
export const dueOutcomeSchema = z.object({
  ...recordShape,
  result: z
    .enum([
      "rotated",
      "shared",
      "would_rotate",
      "not_due",
      "skipped_cooldown",
      "skipped_unfinished",
      "no_key",
      "failed",
    ])
    .describe("shared: another process rotated it meanwhile; would_rotate: a dry run's answer."),
  ...rotationOutcome,
  next_rotation_at: instant.optional().describe("The next scheduled rotation, if not now."),
  overdue: z.boolean().describe("Past its scheduled rotation plus grace, and not rotated now."),
});

/** A scheduled run's report (`rekey rotate --due`). */
export const dueReportSchema = z.object({
  due: z.literal(true),
  dry_run: z.boolean(),
  checked_at: instant,
  next_rotation_at: instant.optional().describe("The earliest next scheduled rotation."),
  results: z.array(dueOutcomeSchema),
});

/** One agent of `rekey rotate --all-agents`. */
export const agentRotationOutcomeSchema = z.object({
  principal: principalSchema,
  label,
  agent_id: z.number().int().positive(),
  name: z.string().describe("The agent's name at the faucet (untrusted text)."),
  result: z
    .enum(["rotated", "already_rotated", "failed"])
    .describe("already_rotated: inside a cooldown, skipped."),
  ...rotationOutcome,
  api_key: z.string().optional().describe("The new raw key: only with --reveal."),
});

/** `rekey rotate --all-agents`. */
export const agentRotationsSchema = z.object({
  dry_run: z.literal(false),
  all_agents: z.literal(true),
  results: z.array(agentRotationOutcomeSchema),
});

/** `rekey rotate --all-agents --dry-run`. */
export const agentRotationPlanSchema = z.object({
  dry_run: z.literal(true),
  all_agents: z.literal(true),
  agents: z.array(
    z.object({
      principal: principalSchema,
      label,
      agent_id: z.number().int().positive(),
      name: z.string(),
      fingerprint: fingerprint.optional(),
      action: z.enum(["rotate", "skip_already_rotated"]),
      cooldown_until: instant.optional(),
    }),
  ),
});

/** A key in a rescue file that the store does not hold (never the key itself). */
export const rescuedKeySchema = z.object({
  ...recordShape,
  fingerprint,
  file: z.string().describe("The rescue file; `rekey rescue import FILE` stores its key."),
  source: z.string().describe("What issued the key: register, rotate, recover..."),
  saved_at: instant.describe("When the rescue file was written."),
  profile: z
    .string()
    .optional()
    .describe("A registration's: the profile that registered, to import it with (`--profile`)."),
});

/** `rekey doctor`: every check, and what `--repair` did. */
export const doctorReportSchema = z.object({
  ok: z.boolean().describe("No problem remains."),
  health: healthSchema,
  keys: z.array(keyCheckSchema),
  deliveries: z.array(deliveryTargetsSchema.extend({ faucet: z.string() })),
  overdue: z.array(policyStatusSchema),
  pending_rotation: keyStatusSchema.shape.pending_rotation
    .unwrap()
    .extend({ principal: principalSchema, label })
    .optional(),
  key_lost: keyStatusSchema.shape.key_lost
    .unwrap()
    .extend({ principal: principalSchema, label })
    .optional(),
  resolutions: z.array(pendingResolutionSchema).optional(),
  settled: z.array(keyCheckSchema).optional(),
  rescued_keys: z
    .array(rescuedKeySchema)
    .optional()
    .describe("Keys in rescue files that the store does not hold: each is a problem."),
});

/** `rekey login`: the key stored and whose it is. */
export const loginSchema = z.object({
  principal: principalSchema,
  label,
  operator_id: recordShape.operator_id,
  fingerprint,
  in_profile: z
    .boolean()
    .describe("false: stored beside this profile (another operator's); act as it with --as."),
  identity: identitySchema,
});

/** `rekey import lightning-wallet`. */
export const walletImportSchema = z.object({
  file: z.string().describe("The lightning-wallet credentials file."),
  recovery_code_skipped: z.boolean().describe("The file holds a recovery code; rekey left it."),
  results: z.array(
    z.object({
      entry: z.enum(["operator", "agent"]).describe("Which key of the file."),
      result: z.enum(["imported", "failed"]),
      principal: principalSchema.optional(),
      label: label.optional(),
      operator_id: recordShape.operator_id,
      fingerprint: fingerprint.optional(),
      name: z.string().optional(),
      in_profile: z.boolean().optional(),
      delivery_target: z.string().optional().describe("The delivery target added (--deliver)."),
      delivery_refused: z
        .string()
        .optional()
        .describe("Why --deliver added no target for this key (the refusal's message)."),
      error: recordError.optional(),
    }),
  ),
});

export type AuditEntryView = z.infer<typeof auditEntrySchema>;

export type HistoryView = z.infer<typeof historySchema>;

export type StoreHealthView = z.infer<typeof storeHealthSchema>;

export type HealthView = z.infer<typeof healthSchema>;

export type KeyCheckView = z.infer<typeof keyCheckSchema>;

export type PendingResolutionView = z.infer<typeof pendingResolutionSchema>;

export type DeliveryTargetsView = z.infer<typeof deliveryTargetsSchema>;

export type PolicyStatusView = z.infer<typeof policyStatusSchema>;

export type DueReportView = z.infer<typeof dueReportSchema>;

export type AgentRotationOutcomeView = z.infer<typeof agentRotationOutcomeSchema>;

export type DoctorReportView = z.infer<typeof doctorReportSchema>;

export type LoginView = z.infer<typeof loginSchema>;

export type WalletImportView = z.infer<typeof walletImportSchema>;

// The small commands' shapes: forget, acknowledge, rescue import, withdraw, the master key,
// profiles, and the local servers the CLI starts.

/** `rekey forget`: the record removed. */
export const forgetSchema = z.object({
  ...recordShape,
  fingerprint: fingerprint.optional().describe("The key removed with it, if any."),
  was_alive: z.boolean().describe("The faucet still accepted that key."),
});

/** `rekey acknowledge`: the recorded key loss acknowledged. */
export const acknowledgementSchema = z.object({
  label,
  request_id: z.string().describe("The rotation that lost the key."),
});

/** `rekey rescue import`: the key of a rescue file, now stored. */
export const rescueImportSchema = z.object({ label, fingerprint });

/** `rekey withdraw`. */
export const withdrawalSchema = z.object({
  amount_sats: z.number().describe("Paid out, in satoshis."),
  fee_sats: z.number().describe("The fee, in satoshis."),
  balance_sats: z.number().describe("The balance after it, in satoshis."),
  payment_hash: z.string(),
});

/** `rekey store rekey-master`: key ids only, never a key. */
export const masterRekeySchema = z.object({
  key_id: z.string().describe("The master key every record is now sealed under."),
  previous_key_id: z.string().optional().describe("The one that sealed new writes before."),
  records: z.number().int().describe("Records sealed again."),
  kept_at: z.string().optional().describe("Where rekey keeps the new key, when it made it."),
});

const recordRef = z.object(recordShape);

/** A profile: a named view of a faucet, an operator and the principal it acts as. */
export const profileSchema = z.object({
  name: z.string(),
  base_url: z.string().describe("The faucet's URL."),
  operator_id: recordShape.operator_id.describe("The operator whose agents it manages."),
  acts_as: recordRef.optional().describe("The principal it acts as; its operator when unset."),
  current: z.boolean().describe("The store's current profile (`rekey profiles use`)."),
  has_key: z.boolean().describe("The principal it acts as holds a key."),
  principals: z.array(recordRef).describe("The records this profile sees on its faucet."),
});

/** `rekey profiles remove`: the records (and keys) that stay in the store. */
export const profileRemovalSchema = z.object({
  removed: z.string(),
  kept_records: z.array(recordRef),
});

export type ProfileSummaryView = z.infer<typeof profileSchema>;

/** What the scheduler tells `/v1/events` (`key.overdue`, `rotation.failed`, ...): key-free. */
export const scheduleEventSchema = z.object({
  type: z.enum(SCHEDULE_EVENT_TYPES),
  at: instant,
  faucet: z.string().describe("Which faucet the principal's record belongs to."),
  ...recordShape,
  old_fingerprint: fingerprint.optional(),
  new_fingerprint: fingerprint.optional(),
  cooldown_until: instant.optional(),
  overdue_at: instant.optional().describe("key.overdue: when it became overdue."),
  target: z.string().optional().describe("delivery.failed: the delivery target's id."),
  error_code: z.string().optional().describe("Failures: the rekey error code."),
  message: z.string().optional().describe("Failures: what happened (key-free)."),
});

export type ScheduleEventView = z.infer<typeof scheduleEventSchema>;

// The functions that build these shapes, exported with them (one vocabulary, one import).
export * from "./vocabulary-views.js";

import * as vocabulary from "@rekey/core/vocabulary";
import { z } from "zod";

// The documented `--json` shapes (README "JSON output"). Tests parse real output with these,
// strictly where a stray field could be a leak.

const principal = z.union([
  z.object({ kind: z.literal("operator") }),
  z.object({ kind: z.literal("agent"), agentId: z.number().int().positive() }),
]);
const fingerprint = z.string().regex(/^fp:[0-9a-f]{12}$/);
const isoInstant = z.string().datetime({ offset: true });
const envelope = <T extends z.ZodRawShape>(command: string, shape: T) =>
  z.object({ schemaVersion: z.literal(2), command: z.literal(command), ...shape });

export const errorDocument = z.strictObject({
  schemaVersion: z.literal(2),
  error: vocabulary.errorSchema.strict(),
});

export const registerDocument = envelope("register", {
  principal: vocabulary.principalSchema.strict(),
  label: z.literal("operator"),
  operator_id: z.number().int().positive(),
  fingerprint,
  recovery_code_file: z.string().optional(),
  recovery_code: z.string().optional(),
}).strict();

const recordPrincipal = z.string().regex(/^(operator|agent):\d+$/);

export const loginDocument = envelope("login", {
  principal,
  label: z.string(),
  fingerprint,
  record: recordPrincipal,
  inProfile: z.boolean(),
  identity: z.object({ type: z.enum(["operator", "agent"]), id: z.number(), name: z.string() }),
}).strict();

const deliveryOutcome = z.strictObject({
  target: z.string().regex(/^[a-z-]+-\d+$/),
  kind: z.enum(["lightning-wallet", "dotenv", "exec", "store", "webhook"]),
  description: z.string(),
  status: z.enum(["delivered", "failed", "current", "deferred"]),
  fingerprint,
  error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  nextAttemptAt: isoInstant.optional(),
});
const deliveryStatus = z.strictObject({
  target: z.string(),
  kind: z.string(),
  description: z.string(),
  state: z.enum(["current", "stale", "failing"]),
  deliveredFingerprint: fingerprint.optional(),
  at: isoInstant.optional(),
  error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  nextAttemptAt: isoInstant.optional(),
});

export const deliverListDocument = envelope("deliver list", {
  principal: z.string(),
  targets: z.array(deliveryStatus),
}).strict();

export const deliverRunDocument = (command: "deliver test" | "deliver retry") =>
  envelope(command, { deliveries: z.array(deliveryOutcome) }).strict();

export const statusDocument = envelope("status", {
  ...vocabulary.keyStatusSchema.shape,
  identity: vocabulary.identitySchema.strict().optional(),
  identity_error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  store_health: z.object({ ok: z.boolean(), problems: z.array(z.string()) }),
}).strict();

export const planDocument = envelope("rotate", vocabulary.rotationPlanSchema.shape).strict();

export const rotationDocument = envelope("rotate", {
  ...vocabulary.rotationSchema.shape,
  deliveries: z.array(vocabulary.deliveryOutcomeSchema.strict()).optional(),
}).strict();

export const recoverDocument = rotationDocument.extend({ command: z.literal("recover") });

const agentOutcome = z.strictObject({
  agent_id: z.number().int().positive(),
  name: z.string(),
  result: z.enum(["rotated", "already_rotated", "failed"]),
  old_fingerprint: fingerprint.optional(),
  fingerprint: fingerprint.optional(),
  cooldown_until: isoInstant.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  api_key: z.string().optional(),
  deliveries: z.array(vocabulary.deliveryOutcomeSchema.strict()).optional(),
});

export const allAgentsDocument = envelope("rotate", {
  dry_run: z.literal(false),
  all_agents: z.literal(true),
  results: z.array(agentOutcome),
}).strict();

export const allAgentsPlanDocument = envelope("rotate", {
  dry_run: z.literal(true),
  all_agents: z.literal(true),
  agents: z.array(
    z.strictObject({
      agent_id: z.number(),
      name: z.string(),
      fingerprint: fingerprint.optional(),
      action: z.enum(["rotate", "skip_already_rotated"]),
      cooldown_until: isoInstant.optional(),
    }),
  ),
}).strict();

export const agentsListDocument = envelope("agents list", {
  agents: z.array(vocabulary.agentSchema.strict()),
}).strict();

export const agentsCreateDocument = envelope("agents create", {
  principal: vocabulary.principalSchema.strict(),
  label: z.string().regex(/^agent \d+$/),
  agent_id: z.number().int().positive(),
  name: z.string(),
  fingerprint,
}).strict();

export const historyDocument = envelope("history", {
  entries: z.array(
    z.object({
      seq: z.number().int(),
      at: isoInstant,
      surface: z.enum(["cli", "mcp", "http", "library"]),
      principal: z.string(),
      action: z.string(),
      outcome: z.string(),
      hash: z.string().regex(/^[0-9a-f]{64}$/),
      prevHash: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ),
  verification: z
    .union([
      z.object({ ok: z.literal(true), count: z.number() }),
      z.object({
        ok: z.literal(false),
        count: z.number(),
        brokenAt: z.number(),
        reason: z.string(),
      }),
    ])
    .optional(),
}).strict();

export const doctorDocument = envelope("doctor", {
  ok: z.boolean(),
  health: z.object({
    ok: z.boolean(),
    store: z.object({ ok: z.boolean(), problems: z.array(z.string()) }),
    upstream: z.object({ ok: z.boolean(), baseUrl: z.string() }),
  }),
  keys: z.array(
    z.strictObject({
      principal: recordPrincipal,
      label: z.string(),
      fingerprint,
      current: z.boolean(),
      alive: z.boolean().optional(),
      error: z.string().optional(),
    }),
  ),
  pendingRotation: z.object({ requestId: z.string(), phase: z.string() }).optional(),
  resolutions: z.array(z.object({ label: z.string(), outcome: z.string() })).optional(),
  settled: z.array(z.object({ principal: recordPrincipal, alive: z.boolean() })).optional(),
  deliveries: z.array(
    z.strictObject({
      principal: recordPrincipal,
      faucet: z.string(),
      targets: z.array(deliveryStatus),
    }),
  ),
  overdue: z.array(
    z.strictObject({
      principal: recordPrincipal,
      fingerprint: fingerprint.optional(),
      dueAt: isoInstant.optional(),
      overdueAt: isoInstant.optional(),
    }),
  ),
}).strict();

const rotationPolicy = z.strictObject({
  maxAgeSeconds: z.number().int().positive(),
  window: z.string().optional(),
  jitterSeconds: z.number().int().optional(),
  graceSeconds: z.number().int().optional(),
  setAt: isoInstant,
});

export const policyDocument = envelope("policy", {
  action: z.enum(["set", "list", "clear"]),
  policies: z.array(
    z.strictObject({
      principal: recordPrincipal,
      label: z.string(),
      fingerprint: fingerprint.optional(),
      savedAt: isoInstant.optional(),
      policy: rotationPolicy,
      due: z
        .strictObject({
          dueAt: isoInstant,
          nextRotationAt: isoInstant.optional(),
          inWindow: z.boolean(),
          due: z.boolean(),
          overdueAt: isoInstant,
          overdue: z.boolean(),
        })
        .optional(),
    }),
  ),
}).strict();

export const dueDocument = envelope("rotate", {
  due: z.literal(true),
  dryRun: z.boolean(),
  checkedAt: isoInstant,
  nextRotationAt: isoInstant.optional(),
  results: z.array(
    z.strictObject({
      principal: recordPrincipal,
      label: z.string(),
      result: z.enum([
        "rotated",
        "shared",
        "would_rotate",
        "not_due",
        "skipped_cooldown",
        "skipped_unfinished",
        "no_key",
        "failed",
      ]),
      oldFingerprint: fingerprint.optional(),
      newFingerprint: fingerprint.optional(),
      cooldownUntil: isoInstant.optional(),
      nextRotationAt: isoInstant.optional(),
      overdue: z.boolean(),
      error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
      deliveries: z.array(deliveryOutcome).optional(),
    }),
  ),
}).strict();

export const importDocument = envelope("import lightning-wallet", {
  file: z.string(),
  recoveryCodeSkipped: z.boolean(),
  results: z.array(
    z.strictObject({
      entry: z.enum(["operator", "agent"]),
      result: z.enum(["imported", "failed"]),
      principal: principal.optional(),
      label: z.string().optional(),
      fingerprint: fingerprint.optional(),
      name: z.string().optional(),
      record: recordPrincipal.optional(),
      inProfile: z.boolean().optional(),
      deliveryTarget: z.string().optional(),
      error: z.object({ code: z.string(), message: z.string() }).optional(),
    }),
  ),
}).strict();

export const withdrawDocument = envelope("withdraw", {
  amountSats: z.number(),
  feeSats: z.number(),
  newBalance: z.number(),
  paymentHash: z.string(),
}).strict();

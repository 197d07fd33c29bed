import { COOLDOWN_MINUTES } from "@rekey/core";
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
  z.object({ schemaVersion: z.literal(1), command: z.literal(command), ...shape });

export const errorDocument = z.strictObject({
  schemaVersion: z.literal(1),
  error: z.strictObject({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    details: z.record(z.string(), z.unknown()),
  }),
});

export const registerDocument = envelope("register", {
  operatorId: z.number().int().positive(),
  fingerprint,
  recoveryCodeFile: z.string().optional(),
  recoveryCode: z.string().optional(),
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
  deliveries: z.array(deliveryStatus).optional(),
  principal,
  label: z.string(),
  profile: z.string(),
  baseUrl: z.string(),
  hasKey: z.boolean(),
  fingerprint: fingerprint.optional(),
  keyAgeSeconds: z.number().optional(),
  cooldownUntil: isoInstant.optional(),
  cooldownRemainingSeconds: z.number().nonnegative(),
  lastRotation: z
    .object({ oldFingerprint: fingerprint, newFingerprint: fingerprint, rotatedAt: isoInstant })
    .optional(),
  pendingRotation: z.object({ requestId: z.string(), phase: z.string() }).optional(),
  store: z.object({ kind: z.string(), location: z.string() }),
  identity: z.object({ type: z.string(), id: z.number(), name: z.string() }).optional(),
  identityError: z.object({ code: z.string(), message: z.string() }).optional(),
  storeHealth: z.object({ ok: z.boolean(), problems: z.array(z.string()) }),
});

export const planDocument = envelope("rotate", {
  dryRun: z.literal(true),
  principal,
  label: z.string(),
  currentFingerprint: fingerprint,
  action: z.enum(["regenerate_operator_key", "regenerate_agent_key"]),
  cooldownMinutes: z.union([
    z.literal(COOLDOWN_MINUTES.operator),
    z.literal(COOLDOWN_MINUTES.agent),
  ]),
  cooldownWouldEndAt: isoInstant,
  currentCooldownUntil: isoInstant.optional(),
  blockedByCooldown: z.boolean(),
}).strict();

export const rotationDocument = envelope("rotate", {
  dryRun: z.literal(false),
  principal,
  label: z.string(),
  oldFingerprint: fingerprint,
  newFingerprint: fingerprint,
  rotatedAt: isoInstant,
  cooldownUntil: isoInstant,
  cooldownMinutes: z.union([
    z.literal(COOLDOWN_MINUTES.operator),
    z.literal(COOLDOWN_MINUTES.agent),
  ]),
  verified: z.boolean(),
  requestId: z.string(),
  shared: z.boolean(),
  apiKey: z.string().optional(),
  deliveries: z.array(deliveryOutcome).optional(),
}).strict();

export const recoverDocument = rotationDocument.extend({ command: z.literal("recover") });

const agentOutcome = z.strictObject({
  agentId: z.number().int().positive(),
  name: z.string(),
  result: z.enum(["rotated", "already_rotated", "failed"]),
  oldFingerprint: fingerprint.optional(),
  newFingerprint: fingerprint.optional(),
  cooldownUntil: isoInstant.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  apiKey: z.string().optional(),
  deliveries: z.array(deliveryOutcome).optional(),
});

export const allAgentsDocument = envelope("rotate", {
  dryRun: z.literal(false),
  allAgents: z.literal(true),
  results: z.array(agentOutcome),
}).strict();

export const allAgentsPlanDocument = envelope("rotate", {
  dryRun: z.literal(true),
  allAgents: z.literal(true),
  agents: z.array(
    z.object({
      agentId: z.number(),
      name: z.string(),
      fingerprint: fingerprint.optional(),
      action: z.enum(["rotate", "skip_already_rotated"]),
      cooldownUntil: isoInstant.optional(),
    }),
  ),
}).strict();

export const agentsListDocument = envelope("agents list", {
  agents: z.array(
    z.strictObject({
      id: z.number().int().positive(),
      name: z.string(),
      balanceSats: z.number(),
      isActive: z.boolean(),
      hasKey: z.boolean(),
      fingerprint: fingerprint.optional(),
      cooldownUntil: isoInstant.optional(),
      cooldownRemainingSeconds: z.number().nonnegative(),
      lastRotatedAt: isoInstant.optional(),
    }),
  ),
}).strict();

export const agentsCreateDocument = envelope("agents create", {
  agentId: z.number().int().positive(),
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

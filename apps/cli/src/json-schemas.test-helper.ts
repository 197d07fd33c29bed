import * as vocabulary from "@rekey/core/vocabulary";
import { z } from "zod";

// The documented `--json` shapes (README "JSON output"). Tests parse real output with these,
// strictly where a stray field could be a leak.

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

const strictDelivery = vocabulary.deliveryOutcomeSchema.strict();
const strictDeliveryStatus = vocabulary.deliveryStatusSchema.strict();
const strictPrincipal = vocabulary.principalSchema.strict();

export const loginDocument = envelope("login", {
  ...vocabulary.loginSchema.shape,
  principal: strictPrincipal,
  fingerprint,
  identity: vocabulary.identitySchema.strict(),
}).strict();

export const deliverListDocument = envelope("deliver list", {
  ...vocabulary.deliveryTargetsSchema.shape,
  principal: strictPrincipal,
  targets: z.array(strictDeliveryStatus),
}).strict();

export const deliverAddDocument = envelope("deliver add", {
  principal: strictPrincipal,
  label: z.string(),
  operator_id: z.number().int().positive().optional(),
  target: z.string(),
  delivery: strictDelivery.optional(),
}).strict();

export const deliverRunDocument = (command: "deliver test" | "deliver retry") =>
  envelope(command, { deliveries: z.array(strictDelivery) }).strict();

export const statusDocument = envelope("status", {
  ...vocabulary.keyStatusSchema.shape,
  identity: vocabulary.identitySchema.strict().optional(),
  identity_error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  store_health: vocabulary.storeHealthSchema.strict(),
  rescued_keys: z.array(vocabulary.rescuedKeySchema.strict()).optional(),
}).strict();

export const planDocument = envelope("rotate", vocabulary.rotationPlanSchema.shape).strict();

export const rotationDocument = envelope("rotate", {
  ...vocabulary.rotationSchema.shape,
  deliveries: z.array(strictDelivery).optional(),
}).strict();

export const recoverDocument = rotationDocument.extend({ command: z.literal("recover") });

export const allAgentsDocument = envelope("rotate", {
  ...vocabulary.agentRotationsSchema.shape,
  results: z.array(
    vocabulary.agentRotationOutcomeSchema
      .extend({
        principal: strictPrincipal,
        old_fingerprint: fingerprint.optional(),
        fingerprint: fingerprint.optional(),
        deliveries: z.array(strictDelivery).optional(),
      })
      .strict(),
  ),
}).strict();

export const allAgentsPlanDocument = envelope("rotate", {
  ...vocabulary.agentRotationPlanSchema.shape,
  agents: z.array(vocabulary.agentRotationPlanSchema.shape.agents.element.strict()),
}).strict();

export const agentsListDocument = envelope("agents list", {
  agents: z.array(vocabulary.agentSchema.strict()),
}).strict();

export const agentsCreateDocument = envelope("agents create", {
  principal: strictPrincipal,
  label: z.string().regex(/^agent \d+$/),
  agent_id: z.number().int().positive(),
  name: z.string(),
  fingerprint,
}).strict();

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const historyDocument = envelope("history", {
  entries: z.array(
    vocabulary.auditEntrySchema
      .extend({ principal: strictPrincipal, at: isoInstant, hash: hex64, prev_hash: hex64 })
      .strict(),
  ),
  verification: vocabulary.auditVerificationSchema.strict().optional(),
}).strict();

const strictPolicy = vocabulary.policyStatusSchema
  .extend({
    principal: strictPrincipal,
    rules: vocabulary.policyStatusSchema.shape.rules.strict(),
    schedule: vocabulary.policyStatusSchema.shape.schedule.unwrap().strict().optional(),
  })
  .strict();

export const doctorDocument = envelope("doctor", {
  ...vocabulary.doctorReportSchema.shape,
  keys: z.array(vocabulary.keyCheckSchema.extend({ principal: strictPrincipal }).strict()),
  settled: z
    .array(vocabulary.keyCheckSchema.extend({ principal: strictPrincipal }).strict())
    .optional(),
  deliveries: z.array(
    vocabulary.doctorReportSchema.shape.deliveries.element
      .extend({ principal: strictPrincipal, targets: z.array(strictDeliveryStatus) })
      .strict(),
  ),
  overdue: z.array(strictPolicy),
}).strict();

export const policyDocument = envelope("policy", {
  ...vocabulary.policyListSchema.shape,
  policies: z.array(strictPolicy),
}).strict();

export const dueDocument = envelope("rotate", {
  ...vocabulary.dueReportSchema.shape,
  checked_at: isoInstant,
  results: z.array(
    vocabulary.dueOutcomeSchema
      .extend({ principal: strictPrincipal, deliveries: z.array(strictDelivery).optional() })
      .strict(),
  ),
}).strict();

export const importDocument = envelope("import lightning-wallet", {
  ...vocabulary.walletImportSchema.shape,
  results: z.array(
    vocabulary.walletImportSchema.shape.results.element
      .extend({ principal: strictPrincipal.optional() })
      .strict(),
  ),
}).strict();

export const withdrawDocument = envelope("withdraw", vocabulary.withdrawalSchema.shape).strict();

/**
 * "operator:1", "agent:7" or "operator": the record a vocabulary principal (with its
 * `operator_id`) names, for short assertions.
 */
export function recordOf(view: {
  principal: { kind: "operator" | "agent"; agent_id?: number | undefined };
  operator_id?: number | undefined;
}): string {
  if (view.principal.kind === "agent") return `agent:${view.principal.agent_id}`;
  return view.operator_id === undefined ? "operator" : `operator:${view.operator_id}`;
}

const strictRecord = z.strictObject({
  principal: vocabulary.principalSchema.strict(),
  label: z.string(),
  operator_id: z.number().int().positive().optional(),
});

export const forgetDocument = envelope("forget", {
  ...vocabulary.forgetSchema.shape,
  principal: vocabulary.principalSchema.strict(),
}).strict();

export const profilesListDocument = envelope("profiles list", {
  profiles: z.array(
    vocabulary.profileSchema
      .extend({ acts_as: strictRecord.optional(), principals: z.array(strictRecord) })
      .strict(),
  ),
}).strict();

export const profilesRemoveDocument = envelope("profiles remove", {
  removed: z.string(),
  kept_records: z.array(strictRecord),
}).strict();

export const masterRekeyDocument = envelope(
  "store rekey-master",
  vocabulary.masterRekeySchema.shape,
).strict();

export * from "./client/index.js";
export { type Clock, isoAt, systemClock } from "./clock.js";
export { COOLDOWN_MINUTES, type CooldownMinutes } from "./cooldowns.js";
export {
  type DeliveryFinisherOptions,
  startDeliveryFinisher,
} from "./delivery/delivery-finisher.js";
export {
  type DeliveryJournalContext,
  type DeliveryOutcome,
  type DeliveryStatus,
  deliverRecord,
  deliveryBackoffMs,
  deliveryStatusOf,
  finishDeliveries,
} from "./delivery/delivery-journal.js";
export type { DeliveryEnvironment, DeliveryPayload } from "./delivery/delivery-payload.js";
export { setDotenvVariable } from "./delivery/dotenv-target.js";
export { updatedLightningWalletFile } from "./delivery/lightning-wallet-target.js";
export {
  DELIVERY_KINDS,
  type DeliveryKind,
  type DeliveryState,
  type DeliveryTarget,
  type DeliveryTargetSpec,
  describeTarget,
} from "./delivery/target-schema.js";
export {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  signWebhook,
  verifyWebhookSignature,
  WEBHOOK_SIGNATURE_HEADER,
  type WebhookSignatureInput,
  type WebhookVerifyInput,
} from "./delivery/webhook-signature.js";
export { type WebhookEvent, webhookEventOf } from "./delivery/webhook-target.js";
export { formatDuration } from "./duration.js";
export type { DeliveryStep, EngineHooks, RotationStep } from "./engine/context.js";
export { createRekey, type RekeyOptions } from "./engine/create-rekey.js";
export type { DeliveryOperations } from "./engine/deliveries.js";
export { openCredentialStore, type UrlStoreOpener } from "./engine/open-store.js";
export {
  currentProfileName,
  listProfiles,
  type ProfileSummary,
  removeProfile,
  renameProfile,
  showProfile,
  useProfile,
} from "./engine/profiles.js";
export {
  type AgentRotationOutcome,
  type AgentRotationPlan,
  DEFAULT_AGENT_ROTATION_CONCURRENCY,
  MAX_AGENT_ROTATION_CONCURRENCY,
  planAgentRotation,
  type RotateAgentsOptions,
  rotateAgents,
} from "./engine/rotate-agents.js";
export { listAgentsAsSession } from "./engine/session-agents.js";
export * from "./engine/types.js";
export { type ErrorAudience, type ErrorFacts, errorFacts } from "./error-facts.js";
export * from "./errors.js";
export { fingerprint } from "./fingerprint.js";
export * from "./lightning-wallet.js";
export { isLoopbackHost } from "./loopback.js";
export * from "./principal.js";
export * from "./schedule/index.js";
export {
  applyServerLimits,
  DEFAULT_SERVER_LIMITS,
  type ServerLimits,
  serverCreationOptions,
} from "./server-limits.js";
export * from "./store/index.js";
export * from "./store/types.js";
export {
  KILL_AT_ENV,
  KILL_POINTS,
  type KillPoint,
  killPoint,
} from "./testing/kill-points.js";
export * from "./vocabulary.js";

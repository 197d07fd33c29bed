/**
 * The public API of @rekey/core: what the CLI, the MCP server, the HTTP endpoint and a library
 * user need (createRekey, the stores, the key provider, errors, the JSON vocabulary, schedules,
 * delivery). What a credential store implementation needs (the store document's schemas and
 * migrations, the audit chain, key sealing) is `@rekey/core/store-kit`; the test harness is
 * `@rekey/core/testing`. Everything else is internal and may change in any release.
 */
export type * from "./client/faucet-client.js";
export { createFaucetClient } from "./client/faucet-client.js";
export { closeAllDispatchers } from "./client/transport.js";
export { type Clock, isoAt, systemClock } from "./clock.js";
export { COOLDOWN_MINUTES, type CooldownMinutes } from "./cooldowns.js";
export {
  type DeliveryFinisherOptions,
  startDeliveryFinisher,
} from "./delivery/delivery-finisher.js";
export {
  type DeliveryOutcome,
  type DeliveryStatus,
  deliveryStatusOf,
} from "./delivery/delivery-journal.js";
export type { DeliveryEnvironment, DeliveryPayload } from "./delivery/delivery-payload.js";
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
export { openCredentialStore } from "./engine/open-store.js";
export {
  currentProfileName,
  listProfiles,
  type ProfileSummary,
  removeProfile,
  renameProfile,
  showProfile,
  useProfile,
} from "./engine/profiles.js";
export { importAdvice } from "./engine/rescued-keys.js";
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
export type * from "./engine/types.js";
export { type ErrorAudience, type ErrorFacts, errorFacts } from "./error-facts.js";
export {
  ERROR_CODES,
  type ErrorCode,
  isRekeyError,
  RekeyError,
  type RekeyErrorDetails,
  type RekeyErrorOptions,
  redactKeys,
  toRekeyError,
} from "./errors.js";
export { fingerprint } from "./fingerprint.js";
export {
  type LightningWalletCredentials,
  lightningWalletCredentialsPath,
  parseLightningWalletCredentials,
} from "./lightning-wallet.js";
export { isLoopbackHost } from "./loopback.js";
export {
  agent,
  agentIdSchema,
  MAX_ID,
  OPERATOR,
  type Principal,
  parsePrincipalKey,
  principalKey,
  principalLabel,
  samePrincipal,
} from "./principal.js";
export {
  createScheduler,
  createWebhookNotifier,
  type DueOutcome,
  type DueReport,
  describePolicy,
  keyScheduleOf,
  listRotationPolicies,
  type PolicyScope,
  type PolicyStatus,
  type PolicyTarget,
  type RotateDueOptions,
  type RotationPolicyInput,
  rotateDue,
  SCHEDULE_EVENT_TYPES,
  type ScheduleEvent,
  type ScheduleEventSink,
  type ScheduleEventType,
  type Scheduler,
  type SchedulerOptions,
  type SchedulerTick,
  setRotationPolicy,
  type WebhookNotifierOptions,
  type WebhookSigner,
} from "./schedule/index.js";
export {
  assertBearerTokenStrength,
  MIN_BEARER_TOKEN_LENGTH,
  readSecretFile,
} from "./secret-file.js";
export {
  applyServerLimits,
  DEFAULT_SERVER_LIMITS,
  type ServerLimits,
  serverCreationOptions,
} from "./server-limits.js";
export { type AuditChainVerdict, verifyAuditChain } from "./store/audit-chain.js";
export {
  formatMasterKey,
  type MasterKey,
  openKey,
  parseMasterKey,
  type RecordKey,
  type RekeyMasterResult,
  readKeyFile,
  rekeyMaster,
  type SealedKey,
} from "./store/encryption/index.js";
export {
  AUDIT_FILE,
  CREDENTIALS_FILE,
  createFileStore,
  type FileStoreOptions,
} from "./store/file-store.js";
export { createMemoryStore, type MemoryStoreOptions } from "./store/memory-store.js";
export { faucetIdOf } from "./store/record-ids.js";
export { assertNoPasswordInArgument } from "./store/store-spec.js";
export type * from "./store/types.js";
export {
  KILL_AT_ENV,
  KILL_POINTS,
  type KillPoint,
} from "./testing/kill-points.js";
export * from "./vocabulary.js";

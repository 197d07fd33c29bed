export * from "./client/index.js";
export { type Clock, isoAt, systemClock } from "./clock.js";
export type { EngineHooks, RotationStep } from "./engine/context.js";
export { createRekey, formatDuration, type RekeyOptions } from "./engine/create-rekey.js";
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
export * from "./engine/types.js";
export * from "./errors.js";
export { fingerprint } from "./fingerprint.js";
export * from "./lightning-wallet.js";
export * from "./principal.js";
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

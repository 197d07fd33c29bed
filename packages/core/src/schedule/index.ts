export { formatPolicyDuration, parseDurationSeconds } from "./duration.js";
export {
  SCHEDULE_EVENT_TYPES,
  type ScheduleEvent,
  type ScheduleEventSink,
  type ScheduleEventType,
} from "./events.js";
export {
  createWebhookNotifier,
  type WebhookNotifierOptions,
  type WebhookSigner,
} from "./notify-webhook.js";
export {
  dueStateOfRecord,
  keyScheduleOf,
  listRotationPolicies,
  type PolicyScope,
  type PolicyStatus,
  type PolicyTarget,
  setRotationPolicy,
} from "./policies.js";
export {
  DEFAULT_GRACE_SECONDS,
  type DueState,
  describePolicy,
  dueStateOf,
  jitterOffsetMs,
  parsePolicy,
  type RotationPolicy,
  type RotationPolicyInput,
} from "./policy.js";
export { type DueOutcome, type DueReport, type RotateDueOptions, rotateDue } from "./rotate-due.js";
export {
  createScheduler,
  type Scheduler,
  type SchedulerOptions,
  type SchedulerTick,
  schedulerLockName,
} from "./scheduler.js";
export { isWindowOpen, parseWindow, type RotationWindow } from "./window.js";

/**
 * What the scheduler tells the world: one vocabulary for `/v1/events`, notification webhooks
 * and logs. Facts only (fingerprints, never keys); each front end formats them.
 */

/** The kinds of schedule events. */
export const SCHEDULE_EVENT_TYPES = [
  "rotation.succeeded",
  "rotation.failed",
  "key.lost",
  "key.overdue",
  "cooldown.ended",
  "delivery.failed",
] as const;

export type ScheduleEventType = (typeof SCHEDULE_EVENT_TYPES)[number];

/** One event. `principal` is the record principal ("agent:7"), `faucet` its faucet. */
export interface ScheduleEvent {
  type: ScheduleEventType;
  /** ISO-8601 UTC. */
  at: string;
  faucet: string;
  principal: string;
  oldFingerprint?: string | undefined;
  newFingerprint?: string | undefined;
  cooldownUntil?: string | undefined;
  /** For key.overdue: when it became overdue. */
  overdueAt?: string | undefined;
  /** For delivery.failed of a key delivery: the delivery target's id ("dotenv-1"). */
  target?: string | undefined;
  /** For failures: core's error code and message (key-free). */
  errorCode?: string | undefined;
  message?: string | undefined;
}

/** Where events go; `emit` must not throw (a sink that fails records that itself). */
export interface ScheduleEventSink {
  emit(event: ScheduleEvent): void | Promise<void>;
}

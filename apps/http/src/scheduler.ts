import {
  agent,
  type Clock,
  type CredentialStore,
  createScheduler,
  createWebhookNotifier,
  listRotationPolicies,
  OPERATOR,
  type Rekey,
  SCHEDULE_EVENT_TYPES,
  type ScheduleEvent,
  type ScheduleEventSink,
  type Scheduler,
  type SchedulerTick,
  scheduleEventView,
  signWebhook,
  WEBHOOK_SIGNATURE_HEADER,
  type WebhookSigner,
} from "@rekey/core";
import type { Logger } from "pino";
import type { HubEvent } from "./events/event-hub.js";

/** What `--scheduler` adds to rekey-http: the core scheduler, its metrics and recent events. */
export interface HttpScheduler {
  readonly scheduler: Scheduler;
  /** Prometheus lines appended to `/metrics`. */
  renderMetrics(): string;
  /** The last events, oldest first (for `/v1/events`). */
  recentEvents(): readonly ScheduleEvent[];
}

/** Options of {@link createHttpScheduler}. */
export interface HttpSchedulerDeps {
  rekey: Rekey;
  store: CredentialStore;
  clock: Clock;
  logger: Logger;
  actAs?: string | undefined;
  intervalMs: number;
  leaseMs?: number;
  /** A notification webhook for events (signed like the key-delivery webhooks). */
  notify?: { url: string; secret: string } | undefined;
  /** Sends a live event to `/v1/events` (the event hub's `publish`). */
  publish?: (event: Omit<HubEvent, "id" | "seq">) => void;
  /** Called after a rotation, done or failed (it may have changed a key): the status cache. */
  keysChanged?: () => void;
}

/**
 * The events `/v1/events` learns only from the scheduler. The others it already has from the
 * store: rotations and lost keys from the audit log, cooldown ends from the records.
 */
const PUBLISHED: ReadonlySet<string> = new Set([
  "key.overdue",
  "rotation.failed",
  "delivery.failed",
]);

/** Principals with their own key-age series; the rest count only in the max and the totals. */
const MAX_AGE_SERIES = 100;
const RECENT_EVENTS = 100;

/** Notifications are signed as key-delivery webhooks are: core's one `Rekey-Signature` scheme. */
export function notificationSigner(secret: string): WebhookSigner {
  return {
    header: WEBHOOK_SIGNATURE_HEADER,
    sign: (body, timestamp) => signWebhook({ secret, body, timestamp }),
  };
}

/**
 * Wires core's scheduler into rekey-http: events are logged, kept for `/v1/events`, counted,
 * and sent to the notification webhook; each tick refreshes the key-age gauges.
 */
export function createHttpScheduler(deps: HttpSchedulerDeps): HttpScheduler {
  const { logger } = deps;
  const recent: ScheduleEvent[] = [];
  const eventCounts = new Map<string, number>(SCHEDULE_EVENT_TYPES.map((type) => [type, 0]));
  const resultCounts = new Map<string, number>();
  let ticks = 0;
  let tickErrors = 0;
  let ages: { principal: string; ageSeconds: number; overdue: boolean }[] = [];

  const notifier = deps.notify
    ? createWebhookNotifier({
        url: deps.notify.url,
        signer: notificationSigner(deps.notify.secret),
        clock: deps.clock,
        onGivenUp: (event, reason) => {
          logger.error(
            { event: event.type, principal: event.principal, reason },
            "notification not delivered",
          );
          record(
            {
              ...event,
              type: "delivery.failed",
              message: `notification of ${event.type}: ${reason}`,
            },
            false,
          );
        },
      })
    : undefined;

  function record(event: ScheduleEvent, notify: boolean): void {
    if (event.type === "rotation.succeeded" || event.type === "rotation.failed") {
      deps.keysChanged?.();
    }
    recent.push(event);
    if (recent.length > RECENT_EVENTS) recent.shift();
    eventCounts.set(event.type, (eventCounts.get(event.type) ?? 0) + 1);
    const level =
      event.type === "rotation.succeeded" || event.type === "cooldown.ended" ? "info" : "warn";
    logger[level]({ event }, `schedule event ${event.type}`);
    if (PUBLISHED.has(event.type)) {
      deps.publish?.({
        type: event.type,
        principal: event.principal.startsWith("agent:")
          ? agent(Number(event.principal.slice("agent:".length)))
          : OPERATOR,
        // The vocabulary's words, as the audit events beside it; webhooks get the event itself.
        data: scheduleEventView(event),
      });
    }
    // Sent in the background: a slow receiver must not hold up the next rotation.
    if (notify && notifier) void notifier.emit(event);
  }

  const events: ScheduleEventSink = { emit: (event) => record(event, true) };

  async function refreshAges(): Promise<void> {
    const now = deps.clock.now();
    const policies = await listRotationPolicies({
      store: deps.store,
      profileName: deps.rekey.profileName,
      baseUrl: await deps.rekey.baseUrl(),
      actAs: deps.actAs,
      clock: deps.clock,
    });
    ages = policies.flatMap((policy) =>
      policy.savedAt === undefined
        ? []
        : [
            {
              principal: policy.principal,
              ageSeconds: Math.max(0, Math.floor((now - Date.parse(policy.savedAt)) / 1000)),
              overdue: policy.due?.overdue === true,
            },
          ],
    );
  }

  const scheduler = createScheduler({
    rekey: deps.rekey,
    store: deps.store,
    clock: deps.clock,
    actAs: deps.actAs,
    tickMs: deps.intervalMs,
    ...(deps.leaseMs === undefined ? {} : { leaseMs: deps.leaseMs }),
    events,
    onTick: async (tick: SchedulerTick) => {
      ticks += 1;
      for (const outcome of tick.report?.results ?? []) {
        if (outcome.result === "not_due") continue;
        resultCounts.set(outcome.result, (resultCounts.get(outcome.result) ?? 0) + 1);
      }
      const rotated = tick.report?.results.filter((outcome) => outcome.result === "rotated") ?? [];
      if (rotated.length > 0)
        logger.info(
          { rotated: rotated.map((outcome) => outcome.principal) },
          "scheduled rotations",
        );
      await refreshAges().catch((error: unknown) =>
        logger.warn({ err: error }, "key ages not refreshed"),
      );
    },
    onError: (error) => {
      tickErrors += 1;
      logger.error({ err: error }, "scheduler tick failed");
    },
  });

  return {
    scheduler,
    recentEvents: () => recent,
    renderMetrics() {
      const lines = [
        "# HELP rekey_scheduler_leader 1 when this replica leads the scheduling of its profile.",
        "# TYPE rekey_scheduler_leader gauge",
        `rekey_scheduler_leader ${scheduler.isLeader() ? 1 : 0}`,
        "# HELP rekey_scheduler_ticks_total Scheduler ticks, and those that failed as a whole.",
        "# TYPE rekey_scheduler_ticks_total counter",
        `rekey_scheduler_ticks_total ${ticks}`,
        `rekey_scheduler_tick_errors_total ${tickErrors}`,
        "# HELP rekey_scheduler_results_total Principals a due run acted on, by result.",
        "# TYPE rekey_scheduler_results_total counter",
        ...[...resultCounts]
          .sort()
          .map(([result, count]) => `rekey_scheduler_results_total{result="${result}"} ${count}`),
        "# HELP rekey_schedule_events_total Schedule events by type.",
        "# TYPE rekey_schedule_events_total counter",
        ...[...eventCounts].map(
          ([type, count]) => `rekey_schedule_events_total{type="${type}"} ${count}`,
        ),
        `# HELP rekey_key_age_seconds Age of each key with a rotation policy (the first ${MAX_AGE_SERIES} principals; all count in the max).`,
        "# TYPE rekey_key_age_seconds gauge",
        ...ages
          .slice(0, MAX_AGE_SERIES)
          .map((age) => `rekey_key_age_seconds{principal="${age.principal}"} ${age.ageSeconds}`),
        "# HELP rekey_key_age_max_seconds Age of the oldest key with a rotation policy.",
        "# TYPE rekey_key_age_max_seconds gauge",
        `rekey_key_age_max_seconds ${ages.reduce((max, age) => Math.max(max, age.ageSeconds), 0)}`,
        "# HELP rekey_keys_overdue Keys past their scheduled rotation plus grace.",
        "# TYPE rekey_keys_overdue gauge",
        `rekey_keys_overdue ${ages.filter((age) => age.overdue).length}`,
      ];
      return `${lines.join("\n")}\n`;
    },
  };
}

import type { Clock } from "../clock.js";
import { recordsOfView, viewOf } from "../engine/principal-records.js";
import type { Rekey } from "../engine/types.js";
import { isRekeyError, toRekeyError } from "../errors.js";
import type { CredentialStore, StoreLock } from "../store/types.js";
import type { ScheduleEvent, ScheduleEventSink } from "./events.js";
import { type DueReport, rotateDue } from "./rotate-due.js";

/** Options of {@link createScheduler}. */
export interface SchedulerOptions {
  rekey: Rekey;
  store: CredentialStore;
  clock: Clock;
  actAs?: string | undefined;
  /** How often to look for due keys (default 60 s). */
  tickMs?: number;
  /**
   * The leader's lease: a leader that stalls longer loses the lead to another replica (one
   * that dies loses it when its store connection or lock file goes). Default 30 s.
   */
  leaseMs?: number;
  events?: ScheduleEventSink;
  /** Called (and awaited) after each tick, timed or called by hand (logs, metrics). */
  onTick?: (tick: SchedulerTick) => void | Promise<void>;
  /** Called when a tick fails as a whole (the store unreachable); the next tick tries again. */
  onError?: (error: unknown) => void;
}

/** What one tick did. */
export interface SchedulerTick {
  /** Whether this replica held the lead and ran the due rotations. */
  leader: boolean;
  report?: DueReport | undefined;
}

/** A background runner of due rotations; one leader among replicas sharing a store. */
export interface Scheduler {
  /** Ticks now and then every `tickMs` until `stop`. */
  start(): void;
  /** One tick: take the lead if free, then (as leader) rotate what is due. */
  tick(): Promise<SchedulerTick>;
  isLeader(): boolean;
  /** Stops ticking, waits for a tick in flight, and gives up the lead. */
  stop(): Promise<void>;
}

const DEFAULT_TICK_MS = 60_000;
const DEFAULT_LEASE_MS = 30_000;

/** The lock whose holder is the scheduling leader of a profile. */
export function schedulerLockName(profileName: string): string {
  return `scheduler.${profileName}`;
}

/**
 * Runs {@link rotateDue} on a timer. Among replicas on one store, the one holding the
 * profile's scheduler lock (a store lease: PostgreSQL advisory lock, lock file) is the leader
 * and the only one that rotates; the others try to take the lock on every tick, so a killed
 * leader is replaced within a tick of its lock going. Should two ever run at once (a leader
 * stalled past its lease and woke up), the engine's per-principal lock and each rotation's
 * expected fingerprint still rotate every key once.
 *
 * Events: those of rotateDue (a key.overdue once per key, not every tick), plus
 * `cooldown.ended` when a cooldown of one of the profile's principals ended since the last tick.
 */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const tickMs = options.tickMs ?? DEFAULT_TICK_MS;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const { rekey, store, clock } = options;
  let lead: StoreLock | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<SchedulerTick> | undefined;
  let stopped = false;
  let lastTickAt: number | undefined;
  // Overdue keys already announced, by record principal and fingerprint.
  const announcedOverdue = new Set<string>();

  const events: ScheduleEventSink = {
    async emit(event: ScheduleEvent) {
      if (event.type === "key.overdue") {
        const key = `${event.principal} ${event.oldFingerprint ?? ""}`;
        if (announcedOverdue.has(key)) return;
        announcedOverdue.add(key);
      }
      await options.events?.emit(event);
    },
  };

  async function takeLead(): Promise<boolean> {
    if (lead) return true;
    try {
      lead = await store.lock(schedulerLockName(rekey.profileName), { leaseMs, waitMs: 0 });
      return true;
    } catch (error) {
      if (isRekeyError(error, "ROTATION_IN_PROGRESS")) return false;
      throw error;
    }
  }

  async function announceEndedCooldowns(now: number): Promise<void> {
    const since = lastTickAt;
    lastTickAt = now;
    if (since === undefined) return;
    const snapshot = await store.read();
    const view = viewOf(snapshot.data, rekey.profileName, await rekey.baseUrl(), {
      actAs: options.actAs,
    });
    for (const record of recordsOfView(view)) {
      const until =
        record.cooldownUntil === undefined ? Number.NaN : Date.parse(record.cooldownUntil);
      if (until > since && until <= now) {
        await events.emit({
          type: "cooldown.ended",
          at: record.cooldownUntil as string,
          faucet: record.faucet,
          principal: record.principal,
          oldFingerprint: record.fingerprint,
        });
      }
    }
  }

  async function tickOnce(): Promise<SchedulerTick> {
    if (!(await takeLead())) return { leader: false };
    const now = clock.now();
    const report = await rotateDue({ rekey, store, clock, actAs: options.actAs, events });
    await announceEndedCooldowns(now);
    // A key no longer overdue (rotated) may be announced again the next time.
    for (const outcome of report.results) {
      if (!outcome.overdue) {
        for (const key of announcedOverdue) {
          if (key.startsWith(`${outcome.principal} `)) announcedOverdue.delete(key);
        }
      }
    }
    return { leader: true, report };
  }

  const scheduler: Scheduler = {
    tick() {
      running ??= tickOnce()
        .then(async (tick) => {
          await options.onTick?.(tick);
          return tick;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
    isLeader: () => lead !== undefined,
    start() {
      const loop = async () => {
        if (stopped) return;
        try {
          await scheduler.tick();
        } catch (error) {
          options.onError?.(toRekeyError(error));
        }
        if (!stopped) timer = setTimeout(() => void loop(), tickMs);
      };
      void loop();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => {});
      const held = lead;
      lead = undefined;
      await held?.release();
    },
  };
  return scheduler;
}

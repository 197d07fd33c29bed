import { createHash } from "node:crypto";
import { RekeyError } from "../errors.js";
import { cooldownMinutes, type Principal } from "../principal.js";
import type { RotationPolicy } from "../store/types.js";
import { formatPolicyDuration, parseDurationSeconds } from "./duration.js";
import {
  isWindowOpen,
  occurrencesFrom,
  parseWindow,
  type RotationWindow,
  windowLengthSeconds,
} from "./window.js";

/** What `rekey policy set` asks for, as written. */
export interface RotationPolicyInput {
  maxAge: string;
  window?: string | undefined;
  jitter?: string | undefined;
  grace?: string | undefined;
}

export type { RotationPolicy };

export const DEFAULT_GRACE_SECONDS = 86_400;

/**
 * Parses and checks a policy for one principal.
 * @throws RekeyError INVALID_INPUT for a bad duration or window, a max-age not longer than the
 *   principal's withdrawal cooldown (every rotation would land inside the last one's block), or
 *   a jitter not shorter than the window or the max-age.
 */
export function parsePolicy(
  input: RotationPolicyInput,
  principal: Principal,
  setAt: string,
): RotationPolicy {
  const maxAgeSeconds = parseDurationSeconds(input.maxAge, "--max-age");
  const cooldownSeconds = cooldownMinutes(principal) * 60;
  if (maxAgeSeconds <= cooldownSeconds) {
    throw new RekeyError(
      "INVALID_INPUT",
      `--max-age ${formatPolicyDuration(maxAgeSeconds)} is not longer than the ${cooldownMinutes(principal)}-minute withdrawal cooldown a rotation starts`,
      {
        hint: "Each rotation would start inside the previous one's cooldown and block withdrawals for good; use a max-age of days.",
      },
    );
  }
  const window = input.window === undefined ? undefined : parseWindow(input.window);
  const jitterSeconds =
    input.jitter === undefined ? undefined : parseDurationSeconds(input.jitter, "--jitter");
  if (jitterSeconds !== undefined) {
    const limit = window ? windowLengthSeconds(window) : maxAgeSeconds;
    if (jitterSeconds >= limit) {
      throw new RekeyError(
        "INVALID_INPUT",
        `--jitter ${formatPolicyDuration(jitterSeconds)} is not shorter than the ${window ? "window" : "max-age"} (${formatPolicyDuration(limit)})`,
        { hint: "The jitter spreads rotations inside the window; make it shorter." },
      );
    }
  }
  const graceSeconds =
    input.grace === undefined ? undefined : parseDurationSeconds(input.grace, "--grace");
  return {
    maxAgeSeconds,
    ...(window ? { window: window.text } : {}),
    ...(jitterSeconds === undefined ? {} : { jitterSeconds }),
    ...(graceSeconds === undefined ? {} : { graceSeconds }),
    setAt,
  };
}

/** Where a principal stands against its policy at one moment. Times are ISO-8601 UTC. */
export interface DueState {
  /** When the key reaches its max-age. */
  dueAt: string;
  /**
   * When a scheduled run rotates it next: now when it is due, else the first moment it will
   * be. Absent when its window never opens in the next nine days.
   */
  nextRotationAt?: string;
  /** Whether the window is open now (true without a window). */
  inWindow: boolean;
  /** Due now: max-age (as the window places it) reached and the window open. */
  due: boolean;
  /** When it counts as overdue: its scheduled rotation plus the grace. */
  overdueAt: string;
  overdue: boolean;
}

/**
 * Where a key saved at `savedAtMs` stands at `nowMs`.
 *
 * Without a window a key is due at max-age plus its jitter offset. With one, it is rotated in
 * the window opening during which it reaches max-age (or the next one): at the opening plus
 * its jitter offset if the key was saved before that opening (so a daily policy rotates at the
 * same time every day instead of drifting by a scheduler's tick), else once it reaches max-age.
 * A missed opening (scheduler down) rotates at the next moment the window is open.
 *
 * @param recordId the record's id: the jitter offset is derived from it, so it is the same on
 *   every replica and every run.
 * @throws RekeyError INVALID_INPUT when the stored window no longer parses (e.g. a time zone
 *   this Node's Intl does not know).
 */
export function dueStateOf(
  policy: RotationPolicy,
  savedAtMs: number,
  recordId: string,
  nowMs: number,
): DueState {
  const window = policy.window === undefined ? undefined : parseWindow(policy.window);
  const offset = jitterOffsetMs(recordId, policy.jitterSeconds);
  const dueAt = savedAtMs + policy.maxAgeSeconds * 1000;
  const scheduled = window
    ? firstSlot(window, dueAt, offset, (start) =>
        start > savedAtMs ? start + offset : Math.max(start + offset, dueAt),
      )
    : dueAt + offset;
  const inWindow = window ? isWindowOpen(window, nowMs) : true;
  let next = scheduled;
  let due = false;
  if (scheduled !== undefined && nowMs >= scheduled) {
    due = inWindow;
    next = due || !window ? nowMs : firstSlot(window, nowMs, offset, (start) => start + offset);
  }
  const overdueAt = (scheduled ?? dueAt) + (policy.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
  return {
    dueAt: new Date(dueAt).toISOString(),
    ...(next === undefined ? {} : { nextRotationAt: new Date(next).toISOString() }),
    inWindow,
    due,
    overdueAt: new Date(overdueAt).toISOString(),
    overdue: nowMs >= overdueAt,
  };
}

/** The first opening ending after `fromMs` where `candidate(start)` falls inside it. */
function firstSlot(
  window: RotationWindow,
  fromMs: number,
  offset: number,
  candidate: (start: number) => number,
): number | undefined {
  for (const occurrence of occurrencesFrom(window, fromMs)) {
    const at = Math.max(candidate(occurrence.start), occurrence.start);
    if (at < occurrence.end) return at;
    // The jitter offset pushed it past a (DST-shortened) opening: its start, then.
    if (offset > 0 && occurrence.start >= fromMs) return occurrence.start;
  }
  return undefined;
}

/**
 * A principal's fixed share of the jitter, in whole seconds: the first 48 bits of SHA-256 of
 * its record id scaled to [0, jitter). The same on every replica, so they agree on when.
 */
export function jitterOffsetMs(recordId: string, jitterSeconds: number | undefined): number {
  if (!jitterSeconds) return 0;
  const digest = createHash("sha256").update(recordId).digest();
  const fraction = digest.readUIntBE(0, 6) / 2 ** 48;
  return Math.floor(fraction * jitterSeconds) * 1000;
}

/** The policy in words: "max-age 30d, window Mon-Fri 02:00-04:00 Europe/Berlin, jitter 20m". */
export function describePolicy(policy: RotationPolicy): string {
  const parts = [`max-age ${formatPolicyDuration(policy.maxAgeSeconds)}`];
  if (policy.window !== undefined) parts.push(`window ${policy.window}`);
  if (policy.jitterSeconds !== undefined)
    parts.push(`jitter ${formatPolicyDuration(policy.jitterSeconds)}`);
  if (policy.graceSeconds !== undefined)
    parts.push(`grace ${formatPolicyDuration(policy.graceSeconds)}`);
  return parts.join(", ");
}

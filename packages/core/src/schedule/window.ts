import { DateTime, IANAZone } from "luxon";
import { RekeyError } from "../errors.js";

/**
 * Rotation windows: when in the week a rotation may start, in a time zone.
 *
 * Syntax: `DAYS HH:MM-HH:MM [ZONE]`, e.g. `Mon-Fri 02:00-04:00 Europe/Berlin`. DAYS is `daily`,
 * or a comma list of days and ranges (`Mon-Fri`, `Sat,Sun`, `Fri-Mon`). The end may be `24:00`;
 * an end before the start runs past midnight and belongs to the start's day. ZONE is an IANA
 * name (default UTC), checked through Intl by Luxon, which also does the calendar arithmetic.
 *
 * Windows are wall-clock times, so around a DST change (tested in window.test.ts):
 * - spring forward: a time that does not exist moves forward by the gap (Luxon's rule), so
 *   `02:00-03:00 Europe/Berlin` does not open on the last Sunday of March (it has no length),
 *   and `02:00-04:00` opens at 03:00 CEST for one hour;
 * - fall back: a repeated time is taken at its first occurrence, so `02:00-03:00 Europe/Berlin`
 *   on the last Sunday of October runs from 02:00 CEST to 03:00 CET: two hours.
 */

const DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
const PATTERN = /^(\S+)\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})(?:\s+(\S+))?$/;
// Far enough to find the next opening of any window with at least one day a week.
const SEARCH_DAYS = 9;
const DAY_MS = 86_400_000;

/** A parsed window. `days` holds ISO weekdays, 1 = Monday … 7 = Sunday. */
export interface RotationWindow {
  readonly text: string;
  readonly days: ReadonlySet<number>;
  /** Minutes after local midnight. */
  readonly startMinute: number;
  /** Minutes after the start day's local midnight; more than 1440 when it runs past midnight. */
  readonly endMinute: number;
  readonly zone: string;
}

/** One opening of a window, in milliseconds since the epoch; `end` is exclusive. */
export interface WindowOccurrence {
  start: number;
  end: number;
}

const parsedWindows = new Map<string, RotationWindow>();

/**
 * Parses a window (cached by its text, since a scheduler reads the same ones every tick).
 * @throws RekeyError INVALID_INPUT for bad syntax, an unknown day or time zone, or a window
 *   that never opens (start equal to end).
 */
export function parseWindow(text: string): RotationWindow {
  const cached = parsedWindows.get(text);
  if (cached) return cached;
  const invalid = (why: string) =>
    new RekeyError("INVALID_INPUT", `--window ${JSON.stringify(text.slice(0, 80))}: ${why}`, {
      hint: "Write it as DAYS HH:MM-HH:MM [ZONE], e.g. 'Mon-Fri 02:00-04:00 Europe/Berlin' or 'daily 01:00-05:00'.",
    });
  const match = PATTERN.exec(text.trim());
  if (!match) throw invalid("not DAYS HH:MM-HH:MM [ZONE]");
  const [, daysText = "", startH, startM, endH, endM, zoneText] = match;
  const days = parseDays(daysText, invalid);
  const startMinute = minuteOfDay(Number(startH), Number(startM), false, invalid);
  let endMinute = minuteOfDay(Number(endH), Number(endM), true, invalid);
  if (endMinute === startMinute) throw invalid("it never opens (its start and end are equal)");
  if (endMinute < startMinute) endMinute += 1440;
  const zone = zoneText ?? "UTC";
  if (!IANAZone.isValidZone(zone)) throw invalid(`unknown time zone ${JSON.stringify(zone)}`);
  const window: RotationWindow = {
    text: formatWindow(days, startMinute, endMinute, zone),
    days,
    startMinute,
    endMinute,
    zone,
  };
  parsedWindows.set(text, window);
  return window;
}

/** The nominal length of a window in seconds (DST can make one opening shorter or longer). */
export function windowLengthSeconds(window: RotationWindow): number {
  return (window.endMinute - window.startMinute) * 60;
}

/**
 * The openings of `window` that end after `fromMs`, in order, over at least the next eight
 * days (every window with a day in the week opens within them).
 */
export function occurrencesFrom(window: RotationWindow, fromMs: number): WindowOccurrence[] {
  return openingsAround(window, fromMs).filter((occurrence) => occurrence.end > fromMs);
}

// Luxon's zone arithmetic costs about 0.1 ms a call: a scheduler asking about a thousand
// principals per tick asks about the same few days of the same few windows, so the openings
// of a window are computed once per window and UTC day of the queries.
const openingsCache = new Map<string, WindowOccurrence[]>();

/**
 * The openings from the local day before the UTC day of `fromMs`, over eleven days: every
 * opening that ends after any moment of that UTC day (an opening lasts under two days) and
 * eight days beyond it.
 */
function openingsAround(window: RotationWindow, fromMs: number): WindowOccurrence[] {
  const utcDay = Math.floor(fromMs / DAY_MS) * DAY_MS;
  const cacheKey = `${utcDay} ${window.text}`;
  const cached = openingsCache.get(cacheKey);
  if (cached) return cached;
  // From the day before: an opening that started yesterday may run past midnight.
  const firstDay = DateTime.fromMillis(utcDay, { zone: window.zone }).startOf("day").minus({
    days: 1,
  });
  const list: WindowOccurrence[] = [];
  for (let offset = 0; offset <= SEARCH_DAYS + 1; offset++) {
    const day = firstDay.plus({ days: offset });
    if (!window.days.has(day.weekday)) continue;
    const start = atMinute(day, window.startMinute);
    const end = atMinute(day, window.endMinute);
    // A window inside a spring-forward gap has no length that day: it does not open.
    if (end > start) list.push({ start, end });
  }
  if (openingsCache.size > 1000) openingsCache.clear();
  openingsCache.set(cacheKey, list);
  return list;
}

/** Whether the window is open at `atMs`. */
export function isWindowOpen(window: RotationWindow, atMs: number): boolean {
  return openingsAround(window, atMs).some(
    (occurrence) => occurrence.start <= atMs && atMs < occurrence.end,
  );
}

function atMinute(day: DateTime, minute: number): number {
  const dayOffset = Math.floor(minute / 1440);
  const inDay = minute % 1440;
  return day
    .plus({ days: dayOffset })
    .set({ hour: Math.floor(inDay / 60), minute: inDay % 60, second: 0, millisecond: 0 })
    .toMillis();
}

function parseDays(text: string, invalid: (why: string) => RekeyError): Set<number> {
  const lower = text.toLowerCase();
  if (lower === "daily" || lower === "*") return new Set([1, 2, 3, 4, 5, 6, 7]);
  const days = new Set<number>();
  for (const part of lower.split(",")) {
    const [from, to, extra] = part.split("-");
    if (extra !== undefined) throw invalid(`bad day range ${JSON.stringify(part)}`);
    const first = dayNumber(from ?? "", invalid);
    const last = to === undefined ? first : dayNumber(to, invalid);
    // Fri-Mon wraps over the weekend.
    for (let day = first; ; day = (day % 7) + 1) {
      days.add(day);
      if (day === last) break;
    }
  }
  return days;
}

function dayNumber(text: string, invalid: (why: string) => RekeyError): number {
  const index = DAY_NAMES.indexOf(text as (typeof DAY_NAMES)[number]);
  if (index < 0) {
    throw invalid(`unknown day ${JSON.stringify(text.slice(0, 20))} (use Mon … Sun or daily)`);
  }
  return index + 1;
}

function minuteOfDay(
  hour: number,
  minute: number,
  isEnd: boolean,
  invalid: (why: string) => RekeyError,
): number {
  const total = hour * 60 + minute;
  if (minute > 59 || total > 1440 || (total === 1440 && !isEnd)) {
    throw invalid(
      `${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")} is not a time of day`,
    );
  }
  return total;
}

function formatWindow(days: Set<number>, start: number, end: number, zone: string): string {
  const dayText =
    days.size === 7
      ? "daily"
      : dayRuns([...days].sort((a, b) => a - b))
          .map(([first, last]) =>
            first === last ? dayName(first) : `${dayName(first)}-${dayName(last)}`,
          )
          .join(",");
  const time = (minute: number) => {
    const inDay = minute > 1440 ? minute - 1440 : minute;
    return `${String(Math.floor(inDay / 60)).padStart(2, "0")}:${String(inDay % 60).padStart(2, "0")}`;
  };
  return `${dayText} ${time(start)}-${time(end)} ${zone}`;
}

/** Consecutive days as [first, last] runs: [1,2,3,5] → [[1,3],[5,5]]. */
function dayRuns(sorted: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const day of sorted) {
    const last = runs[runs.length - 1];
    if (last && last[1] === day - 1) last[1] = day;
    else runs.push([day, day]);
  }
  return runs;
}

function dayName(day: number): string {
  const name = DAY_NAMES[day - 1] ?? "";
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

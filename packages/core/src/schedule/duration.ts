import ms, { type StringValue } from "ms";
import { RekeyError } from "../errors.js";

/**
 * Policy durations ("30d", "20m", "1.5h", "2 days") are parsed by `ms` (vercel/ms), the
 * syntax most Node tools already accept. A bare number is refused: `ms` would read "30" as
 * 30 milliseconds, which nobody means for a key's age.
 */

const UNITS: readonly [string, number][] = [
  ["d", 86_400],
  ["h", 3_600],
  ["m", 60],
  ["s", 1],
];

/**
 * Parses a duration into whole seconds.
 * @param what names the option in the error ("--max-age").
 * @throws RekeyError INVALID_INPUT for anything `ms` does not read, a bare number, a value under
 *   one second or a fraction of a second.
 */
export function parseDurationSeconds(text: string, what: string): number {
  const trimmed = text.trim();
  const parsed =
    /[a-z]/i.test(trimmed) && trimmed.length <= 40 ? ms(trimmed as StringValue) : undefined;
  if (typeof parsed !== "number" || !Number.isFinite(parsed) || parsed < 1000) {
    throw new RekeyError(
      "INVALID_INPUT",
      `${what} ${JSON.stringify(text.slice(0, 40))} is not a duration of at least one second`,
      { hint: 'Write it with a unit, as in "30d", "12h", "20m" or "90s".' },
    );
  }
  if (parsed % 1000 !== 0) {
    throw new RekeyError("INVALID_INPUT", `${what} ${JSON.stringify(text)} is not whole seconds`, {
      hint: 'Use whole seconds, as in "90s".',
    });
  }
  return parsed / 1000;
}

/** Seconds in the largest unit that divides them exactly: 2592000 → "30d", 5400 → "90m". */
export function formatPolicyDuration(seconds: number): string {
  for (const [unit, size] of UNITS) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** The ways a call can be made to fail on purpose. */
export const FAULT_KINDS = [
  "drop_after_commit",
  "status_500",
  "status_503",
  "delay",
  "malformed_body",
  "omit_key",
] as const;

/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * A fault for the `nth` call (1-based) of `action`:
 * - `drop_after_commit`: do the work (a rotation is committed and persisted), then destroy the
 *   connection without a reply;
 * - `status_500` / `status_503`: answer that HTTP status and do nothing;
 * - `delay`: do the work, then wait `delayMs` before replying;
 * - `malformed_body`: do the work, then reply HTTP 200 with text that is not JSON;
 * - `omit_key`: do the work, then reply success with the `api_key` field left out.
 */
export interface FaultSpec {
  action: string;
  nth: number;
  kind: FaultKind;
  /** For `delay`: milliseconds to wait. */
  delayMs?: number;
}

/**
 * Parses a CLI fault spec `action:nth:kind[:delayMs]`, e.g. `whoami:2:delay:3000`.
 * Throws an `Error` explaining the expected form when the spec is malformed.
 */
export function parseFaultSpec(text: string): FaultSpec {
  const [action, nthText, kind, delayText, ...rest] = text.split(":");
  const usage = `expected action:nth:kind[:delayMs] with kind one of ${FAULT_KINDS.join(", ")}`;
  if (!action || !nthText || !kind || rest.length > 0) {
    throw new Error(`invalid fault "${text}": ${usage}`);
  }
  const nth = /^\d+$/.test(nthText) ? Number(nthText) : Number.NaN;
  if (!Number.isSafeInteger(nth) || nth < 1) {
    throw new Error(`invalid fault "${text}": nth must be a whole number from 1`);
  }
  if (!isFaultKind(kind)) throw new Error(`invalid fault "${text}": ${usage}`);
  if (kind !== "delay") {
    if (delayText !== undefined) throw new Error(`invalid fault "${text}": only delay takes ms`);
    return { action, nth, kind };
  }
  const delayMs = /^\d+$/.test(delayText ?? "") ? Number(delayText) : Number.NaN;
  if (!Number.isSafeInteger(delayMs) || delayMs < 0) {
    throw new Error(`invalid fault "${text}": delay needs milliseconds, e.g. whoami:1:delay:3000`);
  }
  return { action, nth, kind, delayMs };
}

function isFaultKind(value: string): value is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(value);
}

/**
 * Checks a list of fault specs given as options.
 * Throws an `Error` for a spec with a bad `nth`, kind or delay.
 */
export function validateFaults(faults: readonly FaultSpec[]): FaultSpec[] {
  return faults.map((fault) => {
    const delay = fault.kind === "delay" ? `:${fault.delayMs ?? ""}` : "";
    return parseFaultSpec(`${fault.action}:${fault.nth}:${fault.kind}${delay}`);
  });
}

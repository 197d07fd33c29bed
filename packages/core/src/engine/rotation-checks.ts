import { formatDuration } from "../duration.js";
import { RekeyError } from "../errors.js";
import { capitalized, cooldownMinutes, type Principal, principalLabel } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type { DeepReadonly, PrincipalRecord, RotationRecord } from "../store/types.js";

/** A rotation another caller finished since this one read the key: this call's answer. */
export interface RotatedMeanwhile {
  record: DeepReadonly<RotationRecord>;
  apiKey: string;
  /** True when it is this caller's own rotation (its request_id), finished by whoever resolved it. */
  own: boolean;
}

/**
 * The one "rotated meanwhile" check, made under the principal's lock: the key is no longer
 * the one the caller read (another process rotated it while this call waited for the lock, or
 * for its journal to be resolved), or the rotation of the caller's own request_id is done.
 * Either way that rotation is the answer, and its fresh cooldown no reason to refuse.
 */
export function rotatedMeanwhile(
  current: DeepReadonly<PrincipalRecord> | undefined,
  expectedFingerprint: string | undefined,
  requestId: string | undefined,
): RotatedMeanwhile | undefined {
  const last = current?.lastRotation;
  if (current?.key === undefined || last === undefined) return undefined;
  if (requestId !== undefined && last.requestId === requestId) {
    return { record: last, apiKey: openKey(current.key), own: true };
  }
  if (current.fingerprint !== expectedFingerprint) {
    return { record: last, apiKey: openKey(current.key), own: false };
  }
  return undefined;
}

/** Seconds until `until` (ISO-8601) at `nowMs`, 0 when past or absent. */
export function secondsUntil(until: string | undefined, nowMs: number): number {
  if (until === undefined) return 0;
  return Math.max(0, Math.ceil((Date.parse(until) - nowMs) / 1000));
}

/** COOLDOWN_ACTIVE for a principal whose withdrawal cooldown runs until `until`. */
export function cooldownActiveError(target: Principal, until: string, nowMs: number): RekeyError {
  const seconds = secondsUntil(until, nowMs);
  return new RekeyError(
    "COOLDOWN_ACTIVE",
    `${capitalized(principalLabel(target))} was rotated recently; its withdrawal cooldown runs until ${until} (${formatDuration(seconds)} left)`,
    {
      hint: `Rotating again now would restart the ${cooldownMinutes(target)}-minute withdrawal block. Wait ${formatDuration(seconds)}, or force it deliberately.`,
      details: {
        cooldownUntil: until,
        retryAfterSeconds: seconds,
        principal: principalLabel(target),
      },
    },
  );
}

import type { EngineContext } from "./context.js";
import type { ProfileView } from "./principal-records.js";
import { dropPendingAudit, type RescueFile, readRescueFile } from "./rescue.js";
import { rescuedKeysIn } from "./rescued-keys.js";
import { type AuditEvent, auditOnce } from "./rotation-steps.js";
import type { RescuedKey } from "./types.js";

/**
 * The audit entry a rescue file owes. A recovery that found another account (recover.ts)
 * files that account's new key in a rescue file first (the key is the only live one: durable
 * before anything else), then appends the recovery's audit entry. The file carries that entry
 * (`pendingAudit`) until it is appended, so a process killed in between leaves a file that
 * says so, and whoever lists or imports the file writes the entry, once. The file's own lock
 * ({@link rescueAuditLockName}) is held by the recovery from before the file is written until
 * it dropped `pendingAudit`: a lister that gets it finds either the entry owed by a dead
 * process or a file already settled.
 */

/**
 * The audit entry of a recovery that found another account: a failure (CONFIG_INVALID) under
 * that account, with its new key. Made from the rescue file's own fields when a lister writes
 * it, so the entry always describes the key the file holds.
 */
export function owedRecoveryEntry(kept: {
  principal: string;
  requestId: string;
  fingerprint: string;
  cooldownUntil?: string | undefined;
}): AuditEvent {
  return {
    principal: kept.principal,
    action: "recover",
    outcome: "failure",
    newFingerprint: kept.fingerprint,
    ...(kept.cooldownUntil === undefined ? {} : { cooldownUntil: kept.cooldownUntil }),
    requestId: kept.requestId,
    errorCode: "CONFIG_INVALID",
  };
}

/** The lock of a rescue file's pending audit entry: the recovery's request id names it. */
export function rescueAuditLockName(requestId: string): string {
  return `rescue.${requestId}`;
}

/**
 * Writes the audit entry `file` owes (if the log does not already hold it) and drops
 * `pendingAudit` from the file; returns the file as it now is. Waits at most `waitMs` for the
 * file's lock (a recovery still running holds it).
 * @throws RekeyError ROTATION_IN_PROGRESS when the lock stays held; STORE_UNAVAILABLE when the
 *   audit log refuses the entry (the file keeps owing it); INVALID_INPUT when the file is gone.
 */
export async function settleRescueAudit(
  context: EngineContext,
  path: string,
  file: RescueFile,
  waitMs: number,
): Promise<RescueFile> {
  if (file.pendingAudit === undefined || file.requestId === undefined) return file;
  const lock = await context.store.lock(rescueAuditLockName(file.requestId), {
    leaseMs: context.lockLeaseMs,
    waitMs,
  });
  try {
    // Read again under the lock: the recovery (or another lister) may have settled it.
    const current = await readRescueFile(path);
    if (current.pendingAudit === undefined || current.requestId === undefined) return current;
    const { profile, surface } = current.pendingAudit;
    const event = owedRecoveryEntry({
      principal: current.principal,
      requestId: current.requestId,
      fingerprint: current.fingerprint,
      cooldownUntil: current.lastRotation?.cooldownUntil,
    });
    // The entry is the recovery's: its profile and surface, not the lister's.
    await auditOnce({ ...context, profileName: profile, surface }, event);
    return await dropPendingAudit(path);
  } finally {
    await lock.release();
  }
}

/**
 * This store's rescued keys for the view's faucet (see {@link rescuedKeysIn}), each file's
 * owed audit entry written on the way when its lock is free now (a listing never waits: a
 * recovery still running writes its own, and the next listing retries a failed append).
 */
export function listRescuedKeys(context: EngineContext, view: ProfileView): Promise<RescuedKey[]> {
  return rescuedKeysIn(context.rescueDir, context.store, view, (path, file) =>
    settleRescueAudit(context, path, file, 0).catch(() => undefined),
  );
}

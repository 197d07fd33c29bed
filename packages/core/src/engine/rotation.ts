import { randomUUID } from "node:crypto";
import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { type Principal, principalLabel, samePrincipal } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type {
  DeepReadonly,
  RotationIntent,
  RotationRecord,
  StoreSnapshot,
} from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import type { EngineContext } from "./context.js";
import { type ProfileView, profileIn, recordIn, updateStoreFrom } from "./principal-records.js";
import { resolveIntentLocked } from "./resolve-intent.js";
import { cooldownActiveError, rotatedMeanwhile, secondsUntil } from "./rotation-checks.js";
import {
  type AuditEvent,
  audit,
  clearIntent,
  finishIntent,
  finishIntentWithEntry,
  keyFor,
  lockRecord,
  outcomeUnknown,
  prepareAudit,
  recordAt,
  step,
  storeIssuedKey,
  verifyKey,
} from "./rotation-steps.js";

/** A rotation as the engine hands it back, raw key included; the facade strips it. */
export interface CompletedRotation {
  principal: Principal;
  record: DeepReadonly<RotationRecord>;
  apiKey: string;
  shared: boolean;
  /** Set when the audit entry could not be appended: the journal keeps it owed. */
  auditError?: unknown;
  /** The last snapshot the rotation read or wrote, when it knows it (saves a read after). */
  snapshot?: StoreSnapshot;
}

/**
 * Characters of padding in a journal entry: more than a key, its fingerprint and savedAt, the
 * rotation record and the cooldown take in the final document.
 */
const RESERVE_CHARS = 2048;

export interface RotationParams {
  /** The caller's view, read before taking the lock: it names the faucet and its URL. */
  view: ProfileView;
  target: Principal;
  actor: Principal;
  /** The target's record principal ("operator:12", "agent:7"). */
  targetRecord: string;
  /** The actor's record principal. */
  actorRecord: string;
  /** The target's fingerprint as the caller read it before taking the lock. */
  expectedFingerprint: string | undefined;
  /** A caller-chosen request_id (an idempotent retry), else a new one. */
  requestId?: string | undefined;
  /** Rotate even while the principal's withdrawal cooldown runs. */
  force?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Runs one rotation under the principal's store lock: journal, upstream call, atomic store,
 * verify, clear, audit. The store is read once, under the lock; each write starts from the
 * snapshot the one before wrote. Returns another caller's rotation instead when the key
 * changed since the caller read it (see rotation-checks.ts).
 */
export async function rotateUnderLock(
  context: EngineContext,
  params: RotationParams,
): Promise<CompletedRotation> {
  const { target, targetRecord } = params;
  const { faucet } = params.view;
  const lock = await lockRecord(context, faucet, targetRecord, true);
  // The audit append in flight, if any: the lock is held until it settles, so that whoever
  // takes the lock next (a resolution after a failure below) finds the entry or none, never
  // one still being written.
  let auditing: Promise<{ error: unknown } | undefined> | undefined;
  try {
    // The store as it is now that the lock is held (PostgreSQL reads it with the lock, in one
    // round trip). A holder that crashed while we waited may have left an intent: resolve it
    // first.
    let view =
      lock.snapshot === undefined ? await context.readView() : context.viewOf(lock.snapshot);
    if (recordAt(view, targetRecord)?.intent) {
      await resolveIntentLocked(context, view, targetRecord);
      view = await context.readView();
    }
    const current = recordAt(view, targetRecord);
    const meanwhile = rotatedMeanwhile(current, params.expectedFingerprint, params.requestId);
    if (meanwhile) {
      return {
        principal: target,
        record: meanwhile.record,
        apiKey: meanwhile.apiKey,
        shared: !meanwhile.own,
        snapshot: view.snapshot,
      };
    }
    const cooldownUntil = current?.cooldownUntil;
    if (
      !params.force &&
      cooldownUntil !== undefined &&
      secondsUntil(cooldownUntil, context.clock.now()) > 0
    ) {
      throw cooldownActiveError(target, cooldownUntil, context.clock.now());
    }
    const actorKey = await keyFor(context, view, params.actorRecord);
    if (!actorKey)
      throw new RekeyError("NOT_FOUND", `No key is held for the ${principalLabel(params.actor)}`);
    const oldFingerprint =
      current?.fingerprint ??
      (samePrincipal(params.actor, target) ? fingerprint(actorKey) : "none");
    // Nothing upstream is called unless the audit log can take this rotation's entry.
    await prepareAudit(context);
    killPoint("rotate.preflighted");
    const intent: RotationIntent = {
      requestId: params.requestId ?? randomUUID(),
      principal: targetRecord,
      actor: params.actorRecord,
      oldFingerprint,
      startedAt: new Date(context.clock.now()).toISOString(),
      phase: "requested",
      surface: context.surface,
      // The journal write takes the space the key will: a store that takes it takes the key.
      reserve: "0".repeat(RESERVE_CHARS),
    };
    const baseUrl = context.baseUrl(view);
    const createdByJournal =
      target.kind === "agent" &&
      !samePrincipal(params.actor, target) &&
      recordAt(view, targetRecord) === undefined;
    const journaled = await updateStoreFrom(context.store, view.snapshot, (draft) => {
      const profile = profileIn(draft, context.profileName, baseUrl);
      // A profile first written by a rotation (its key came from the environment) points at
      // the principal that rotated.
      if (profile.operator === undefined && params.actorRecord.startsWith("operator")) {
        profile.operator = params.actorRecord;
      } else if (profile.operator === undefined && profile.actsAs === undefined) {
        profile.actsAs = params.actorRecord;
      }
      const record = recordIn(draft, faucet, targetRecord);
      record.intent = intent;
      if (record.operatorId === undefined && params.actorRecord.startsWith("operator:")) {
        record.operatorId = Number(params.actorRecord.slice("operator:".length));
      }
    });
    await step(context, "intent-written", target);

    const client = context.client(view);
    const regenerate = (key: string) =>
      target.kind === "agent" && !samePrincipal(params.actor, target)
        ? client.regenerateAgentKey(key, {
            agentId: target.agentId,
            requestId: intent.requestId,
            signal: params.signal,
          })
        : client.regenerateOperatorKey(key, {
            requestId: intent.requestId,
            signal: params.signal,
          });
    let reply: { apiKey: string; cooldownUntil?: string | undefined };
    try {
      reply = await regenerate(actorKey).catch(async (error: unknown) => {
        // The actor's lock is not held (only the target's): another rotation of the actor
        // may have committed since its key was read. The refusal is then of the old key, not
        // of the actor: the same request is sent once more with the key stored now.
        const fresher = await actorKeyChangedSince(context, params, actorKey, error);
        if (fresher === undefined) throw error;
        return regenerate(fresher);
      });
    } catch (error) {
      if (!outcomeUnknown(error)) {
        await clearIntent(context, faucet, targetRecord, journaled.snapshot, createdByJournal);
        await audit(context, {
          principal: targetRecord,
          action: "rotate",
          outcome: "failure",
          oldFingerprint,
          requestId: intent.requestId,
          errorCode: isRekeyError(error) ? error.code : "INTERNAL",
        });
        throw error;
      }
      // The server may have rotated: find out now, while we still hold the lock.
      const resolution = await resolveIntentLocked(context, await context.readView(), targetRecord);
      if (resolution.outcome === "not_rotated") throw error;
      const after = recordAt(await context.readView(), targetRecord);
      if (after?.key === undefined || !after.lastRotation) throw error;
      return {
        principal: target,
        record: after.lastRotation,
        apiKey: openKey(after.key),
        shared: false,
      };
    }
    await step(context, "upstream-replied", target);

    // The new key is asked `whoami` while it is written, and again while its audit entry is
    // appended: the round trip overlaps both writes. Its answer is used (and its step reported)
    // only once the key is stored. The entry does not depend on the answer (it records the
    // rotation, not the check), so it need not wait for it.
    const verifying = verifyKey(client, target, reply.apiKey);
    const stored = await storeIssuedKey(context, faucet, target, intent, reply, journaled.snapshot);
    const { record } = stored;
    await step(context, "key-stored", target);
    const entry: AuditEvent = {
      principal: targetRecord,
      action: "rotate",
      outcome: "success",
      oldFingerprint,
      newFingerprint: record.newFingerprint,
      cooldownUntil: record.cooldownUntil,
      requestId: intent.requestId,
    };
    if (context.store.appendsAuditWithWrite === true) {
      // Awaited here: the lock (released in `finally`) is held until the journal is cleared.
      return await finishWithEntry(context, params, record, verifying, reply.apiKey, entry, stored);
    }
    // Audited while the journal still holds the rotation: a kill or a failed append here
    // leaves the journal, and whoever resolves it writes the entry (once: see auditOnce).
    auditing = audit(context, entry).then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    const verified = await verifying;
    await step(context, "verified", target);
    const finalRecord = { ...record, verified };
    const auditFailure = await auditing;
    if (auditFailure !== undefined) {
      // The key is stored and works; the entry is owed. The journal stays (phase stored) and
      // the next run that resolves it appends the entry: reported, not dropped.
      return {
        principal: target,
        record: finalRecord,
        apiKey: reply.apiKey,
        shared: false,
        auditError: auditFailure.error,
        snapshot: stored.snapshot,
      };
    }
    await step(context, "audited", target);
    const finished = await finishIntent(
      context,
      faucet,
      targetRecord,
      finalRecord,
      stored.snapshot,
    );
    await step(context, "intent-cleared", target);
    return {
      principal: target,
      record: finalRecord,
      apiKey: reply.apiKey,
      shared: false,
      snapshot: finished,
    };
  } finally {
    await auditing;
    await lock.release();
  }
}

/**
 * The end of a rotation on a store that appends audit entries with a write (PostgreSQL, the file
 * store): once `whoami` answered, the journal is cleared and the entry appended by one write
 * (one round trip, or one lock and one wait on the disk, fewer than an append, then the
 * clearing). The journal covers the entry either way:
 * a kill before that write, or a write that fails or is lost, leaves the journal in phase
 * `stored`, and whoever resolves it writes the entry (once: see auditOnce). A failure is
 * reported as a failed append is: the key is stored and works, the entry is owed.
 */
async function finishWithEntry(
  context: EngineContext,
  params: RotationParams,
  record: RotationRecord,
  verifying: Promise<boolean>,
  apiKey: string,
  entry: AuditEvent,
  stored: { snapshot: StoreSnapshot },
): Promise<CompletedRotation> {
  const { target, targetRecord } = params;
  const verified = await verifying;
  await step(context, "verified", target);
  const finalRecord = { ...record, verified };
  let finished: StoreSnapshot;
  try {
    finished = await finishIntentWithEntry(
      context,
      params.view.faucet,
      targetRecord,
      finalRecord,
      entry,
      stored.snapshot,
    );
  } catch (error) {
    return {
      principal: target,
      record: finalRecord,
      apiKey,
      shared: false,
      auditError: error,
      snapshot: stored.snapshot,
    };
  }
  await step(context, "audited", target);
  await step(context, "intent-cleared", target);
  return { principal: target, record: finalRecord, apiKey, shared: false, snapshot: finished };
}

/**
 * The actor's key as the store holds it now, when the faucet refused the one read before
 * (UNAUTHORIZED) and the store's has changed since: another rotation of the actor committed
 * meanwhile (waiting for the actor's rotation in flight, if any, to finish). Undefined for any
 * other failure, an actor rotating itself (its lock is held), a key that is still the one used
 * (a genuine refusal), or a store that cannot be read now (the refusal is reported as it is).
 */
async function actorKeyChangedSince(
  context: EngineContext,
  params: RotationParams,
  used: string,
  error: unknown,
): Promise<string | undefined> {
  if (!isRekeyError(error, "UNAUTHORIZED") || params.actorRecord === params.targetRecord) {
    return undefined;
  }
  const storedNow = async () => {
    const view = await context.readView();
    return { view, key: await keyFor(context, view, params.actorRecord) };
  };
  try {
    let now = await storedNow();
    if (now.key === used && recordAt(now.view, params.actorRecord)?.intent !== undefined) {
      // The actor's rotation is in flight (the faucet already took it, the store not yet):
      // its lock is free once it stored the new key (or resolved its journal).
      const actorLock = await lockRecord(context, params.view.faucet, params.actorRecord);
      await actorLock.release();
      now = await storedNow();
    }
    return now.key !== undefined && now.key !== used ? now.key : undefined;
  } catch {
    return undefined;
  }
}

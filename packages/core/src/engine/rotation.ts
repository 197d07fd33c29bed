import { randomUUID } from "node:crypto";
import type { FaucetClient } from "../client/index.js";
import { sleep } from "../clock.js";
import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import {
  capitalized,
  cooldownMinutes,
  type Principal,
  principalLabel,
  samePrincipal,
} from "../principal.js";
import { recordIdOf } from "../store/record-ids.js";
import type {
  AuditEventInput,
  DeepReadonly,
  KeyLostRecord,
  PrincipalRecord,
  RotationIntent,
  RotationRecord,
  StoreData,
  StoreSnapshot,
} from "../store/types.js";
import { type KillPoint, killPoint } from "../testing/kill-points.js";
import { type EngineContext, type RotationStep, rotationLockName } from "./context.js";
import {
  type ProfileView,
  principalOfRecord,
  profileIn,
  recordIn,
  type SnapshotView,
  setKey,
  updateStore,
  updateStoreFrom,
  writableRecord,
} from "./principal-records.js";
import { findRescueFile, removeRescueFile, writeRescueFile } from "./rescue.js";
import { cooldownActiveError, rotatedMeanwhile, secondsUntil } from "./rotation-checks.js";
import type { PendingResolution } from "./types.js";

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

// Replies that prove the server did not rotate: it answered, and said no.
const DEFINITE_REFUSALS = new Set([
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "COOLDOWN_ACTIVE",
  "RATE_LIMITED",
  "INVALID_INPUT",
  "INSUFFICIENT_BALANCE",
]);

/**
 * True when a failed rotation call may still have rotated on the server: the connection broke
 * after the request was sent, the reply was unreadable, or it timed out. Connection refused and
 * business refusals are definite.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (!isRekeyError(error)) return true;
  if (DEFINITE_REFUSALS.has(error.code)) return false;
  if (error.details.outcomeUnknown === false) return false;
  if (error.details.outcomeUnknown === true) return true;
  return error.code !== "UPSTREAM_UNAVAILABLE" || typeof error.details.upstreamStatus === "number";
}

async function step(
  context: EngineContext,
  name: RotationStep,
  principal: Principal,
): Promise<void> {
  killPoint(`rotate.${name}` as KillPoint);
  await context.hooks.afterStep?.(name, principal);
}

type AuditEvent = Omit<AuditEventInput, "at" | "surface" | "profile">;

/**
 * Appends an audit entry. Failures are raised, never swallowed (audit fails closed): a
 * rotation's entry is written while its journal still holds what the entry needs, so a
 * failed append leaves the journal for the next run to write it from.
 */
export async function audit(context: EngineContext, event: AuditEvent): Promise<void> {
  killPoint("audit.before-append");
  await context.store.appendAudit({
    at: new Date(context.clock.now()).toISOString(),
    surface: context.surface,
    profile: context.profileName,
    ...event,
  });
  killPoint("audit.appended");
}

/**
 * Appends the entry of a journaled rotation unless the log already has it (a process killed
 * between the append and clearing the journal wrote it): each committed rotation once.
 */
async function auditOnce(context: EngineContext, event: AuditEvent): Promise<void> {
  if (event.requestId !== undefined) {
    const entries = await context.store.readAudit();
    // The same rotation's key (rotate success or resolve recovered), or its loss.
    const done = entries.some(
      (entry) =>
        entry.requestId === event.requestId &&
        entry.principal === event.principal &&
        (event.outcome === "key_lost"
          ? entry.outcome === "key_lost"
          : entry.newFingerprint !== undefined && entry.newFingerprint === event.newFingerprint),
    );
    if (done) return;
  }
  await audit(context, event);
}

/**
 * The audit preflight: before the faucet is asked for anything the log must be able to take
 * the entry. A torn tail is moved aside by the store and the repair audited here.
 * @throws RekeyError STORE_UNAVAILABLE / STORE_CORRUPT: nothing upstream was called.
 */
export async function prepareAudit(context: EngineContext): Promise<void> {
  const prepared = await context.store.prepareAudit?.();
  if (prepared?.movedAside !== undefined) {
    await audit(context, {
      principal: "audit",
      action: "repair",
      outcome: "success",
      errorCode: "STORE_CORRUPT",
    });
  }
}

/** The record of a principal on the context's faucet in a view, if any. */
function recordAt(
  view: ProfileView,
  recordPrincipal: string,
): DeepReadonly<PrincipalRecord> | undefined {
  return view.data.principals[recordIdOf(view.faucet, recordPrincipal)];
}

/** The key of a record principal: the store's, else the environment's seed when it matches. */
function keyFor(
  context: EngineContext,
  view: ProfileView,
  recordPrincipal: string,
): Promise<string | undefined> {
  const stored = recordAt(view, recordPrincipal)?.key;
  if (stored !== undefined) return Promise.resolve(stored);
  return context.envKey(principalOfRecord(recordPrincipal), view);
}

/** Takes the rotation lock of a record principal on the view's faucet. */
function lockRecord(context: EngineContext, faucet: string, recordPrincipal: string) {
  return context.store.lock(rotationLockName(recordIdOf(faucet, recordPrincipal)), {
    leaseMs: context.lockLeaseMs,
    waitMs: context.lockWaitMs,
  });
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
  const lock = await lockRecord(context, faucet, targetRecord);
  try {
    // A holder that crashed while we waited may have left an intent: resolve it first.
    let view = await context.readView();
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
    let reply: { apiKey: string; cooldownUntil?: string | undefined };
    try {
      reply =
        target.kind === "agent" && !samePrincipal(params.actor, target)
          ? await client.regenerateAgentKey(actorKey, {
              agentId: target.agentId,
              requestId: intent.requestId,
              signal: params.signal,
            })
          : await client.regenerateOperatorKey(actorKey, {
              requestId: intent.requestId,
              signal: params.signal,
            });
    } catch (error) {
      if (!outcomeUnknown(error)) {
        await clearIntent(context, faucet, targetRecord, journaled.snapshot);
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
      return { principal: target, record: after.lastRotation, apiKey: after.key, shared: false };
    }
    await step(context, "upstream-replied", target);

    // The new key is asked `whoami` while it is written: the two round trips overlap. Its
    // answer is used (and its step reported) only once the key is stored.
    const verifying = verifyKey(client, target, reply.apiKey);
    const stored = await storeIssuedKey(context, faucet, target, intent, reply, journaled.snapshot);
    const { record } = stored;
    await step(context, "key-stored", target);
    const verified = await verifying;
    await step(context, "verified", target);
    const finalRecord = { ...record, verified };
    // Audited while the journal still holds the rotation: a kill or a failed append here
    // leaves the journal, and whoever resolves it writes the entry (once: see auditOnce).
    try {
      await audit(context, {
        principal: targetRecord,
        action: "rotate",
        outcome: "success",
        oldFingerprint,
        newFingerprint: record.newFingerprint,
        cooldownUntil: record.cooldownUntil,
        requestId: intent.requestId,
      });
    } catch (error) {
      // The key is stored and works; the entry is owed. The journal stays (phase stored) and
      // the next run that resolves it appends the entry: reported, not dropped.
      return {
        principal: target,
        record: finalRecord,
        apiKey: reply.apiKey,
        shared: false,
        auditError: error,
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
    await lock.release();
  }
}

/**
 * Where an issued key goes and how it is recorded, when that is not simply the journaled
 * rotation's: a recovery stores the account the faucet answered for, as source "recover".
 */
export interface IssuedKey {
  /** The record the key belongs to. */
  recordPrincipal: string;
  source: "rotate" | "recover";
  /** The request_id of the rotation record kept on it. */
  requestId: string;
  oldFingerprint: string;
  /** More changes to make in the same write (a recovery points the profile at the account). */
  alsoChange?: (draft: StoreData) => void;
}

/**
 * Writes the new key, its cooldown and the rotation record in one atomic update, and marks
 * the journal `stored`. The old key is already dead, so a refusing store is retried with
 * backoff (on the context's clock) for `storeRetryMs`; after the first few seconds of refusals
 * the key is also written to a rescue file outside the store (once), so that neither a store
 * that stays broken nor the end of this process loses it. A rotation and a recovery both
 * store their key here.
 * @throws RekeyError STORE_UNAVAILABLE when the store never accepts the write: the intent stays
 * journaled and the error names the rescue file (`rekey rescue import`).
 */
export async function storeIssuedKey(
  context: EngineContext,
  faucet: string,
  target: Principal,
  intent: DeepReadonly<RotationIntent> | undefined,
  reply: { apiKey: string; cooldownUntil?: string | undefined },
  base?: StoreSnapshot,
  issued: IssuedKey | undefined = intent && {
    recordPrincipal: intent.principal,
    source: "rotate",
    requestId: intent.requestId,
    oldFingerprint: intent.oldFingerprint,
  },
): Promise<{ record: RotationRecord; snapshot: StoreSnapshot }> {
  if (issued === undefined) throw new RekeyError("INTERNAL", "A key was issued for nothing");
  const rotatedAt = new Date(context.clock.now()).toISOString();
  const cooldownUntil =
    reply.cooldownUntil ??
    new Date(context.clock.now() + cooldownMinutes(target) * 60_000).toISOString();
  const record: RotationRecord = {
    requestId: issued.requestId,
    oldFingerprint: issued.oldFingerprint,
    newFingerprint: fingerprint(reply.apiKey),
    rotatedAt,
    cooldownUntil,
    verified: false,
    surface: intent?.surface ?? context.surface,
  };
  const write = () =>
    updateStoreFrom(
      context.store,
      base,
      (draft) => {
        const stored = recordIn(draft, faucet, issued.recordPrincipal);
        setKey(stored, {
          key: reply.apiKey,
          fingerprint: record.newFingerprint,
          savedAt: rotatedAt,
          source: issued.source,
        });
        stored.lastRotation = record;
        stored.cooldownUntil = cooldownUntil;
        delete stored.keyLost;
        // The journal is kept (phase stored) until the audit entry is written. A recovery that
        // found another account leaves the old record's journal to be resolved on its own.
        if (intent !== undefined && intent.principal === issued.recordPrincipal) {
          const journaled = stored.intent;
          if (journaled?.requestId === intent.requestId) {
            journaled.phase = "stored";
            delete journaled.reserve;
          }
        }
        issued.alsoChange?.(draft);
      },
      () => context.invalidateKeys(),
    );
  const rescue = () =>
    writeRescueFile(context.rescueDir, {
      faucet,
      principal: issued.recordPrincipal,
      key: reply.apiKey,
      source: issued.source,
      savedAt: rotatedAt,
      ...(intent === undefined ? {} : { requestId: intent.requestId }),
      lastRotation: record,
    });
  const started = context.clock.now();
  let rescuePath: string | undefined;
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      const { snapshot } = await write();
      if (rescuePath !== undefined) await removeRescueFile(rescuePath);
      return { record, snapshot };
    } catch (error) {
      lastError = error;
    }
    const elapsed = context.clock.now() - started;
    if (
      rescuePath === undefined &&
      (elapsed >= RESCUE_AFTER_MS || elapsed >= context.storeRetryMs)
    ) {
      rescuePath = await rescue().catch(() => undefined);
      if (rescuePath !== undefined) killPoint("rescue.written");
    }
    if (elapsed >= context.storeRetryMs) break;
    const wait = Math.min(5_000, 100 * 2 ** attempt, context.storeRetryMs - elapsed);
    await sleep(context.clock, Math.max(10, wait));
  }
  const where =
    rescuePath === undefined
      ? "no rescue file could be written either"
      : `the new key was written to ${rescuePath}`;
  throw new RekeyError(
    "STORE_UNAVAILABLE",
    `${capitalized(principalLabel(target))} was rotated (new key ${record.newFingerprint}) but the credential store refused the new key; ${where}`,
    {
      hint:
        rescuePath === undefined
          ? "Fix the store (disk space, permissions), then run `rekey doctor --repair`: the rotation is journaled and will be replayed where the faucet allows it."
          : `Fix the store (disk space, permissions), then run \`rekey rescue import ${rescuePath}\` (or any rekey command: the journaled rotation picks the rescue file up).`,
      details: {
        principal: principalLabel(target),
        ...(rescuePath === undefined ? {} : { rescueFile: rescuePath }),
      },
      cause: lastError,
    },
  );
}

/** How long a refusing store is retried before the key also goes to a rescue file. */
const RESCUE_AFTER_MS = 3_000;

/** `whoami` with the new key must answer as the rotated principal. */
export async function verifyKey(
  client: FaucetClient,
  target: Principal,
  apiKey: string,
): Promise<boolean> {
  try {
    const identity = await client.whoami(apiKey);
    return target.kind === "operator"
      ? identity.type === "operator"
      : identity.type === "agent" && identity.id === target.agentId;
  } catch {
    // Unverified is reported, not fatal: the key is stored and the old one is dead anyway.
    return false;
  }
}

/** Clears a finished rotation's journal; resolves with the snapshot written. */
export async function finishIntent(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
  record: RotationRecord,
  base?: StoreSnapshot,
): Promise<StoreSnapshot> {
  const written = await updateStoreFrom(
    context.store,
    base,
    (draft) => {
      const stored = writableRecord(draft, faucet, targetRecord);
      if (!stored) return;
      delete stored.intent;
      if (stored.lastRotation?.requestId === record.requestId) stored.lastRotation = record;
    },
    () => context.invalidateKeys(),
  );
  return written.snapshot;
}

async function clearIntent(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
  base?: StoreSnapshot,
): Promise<void> {
  await updateStoreFrom(context.store, base, (draft) => {
    const stored = writableRecord(draft, faucet, targetRecord);
    if (stored) delete stored.intent;
  });
}

/**
 * Resolves the unfinished rotation of one principal under its lock, or writes the audit entry
 * a recorded key loss still owes.
 * @throws RekeyError KEY_LOST when the old key is dead and the new one cannot be had;
 * UPSTREAM_* when the faucet cannot be asked now (the intent stays).
 */
export async function resolveIntent(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
): Promise<PendingResolution | undefined> {
  const lock = await lockRecord(context, faucet, targetRecord);
  try {
    const view = await context.readView();
    const record = recordAt(view, targetRecord);
    if (record?.intent) return await resolveIntentLocked(context, view, targetRecord);
    if (record?.keyLost && !record.keyLost.audited) {
      await settleKeyLost(context, faucet, targetRecord, record.keyLost);
      const target = principalOfRecord(targetRecord);
      return {
        principal: target,
        label: principalLabel(target),
        requestId: record.keyLost.requestId,
        outcome: "key_lost",
      };
    }
    return undefined;
  } finally {
    await lock.release();
  }
}

/** Writes a recorded loss's `key_lost` entry (once) and marks the record audited. */
async function settleKeyLost(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
  lost: DeepReadonly<KeyLostRecord>,
): Promise<void> {
  await auditOnce(context, {
    principal: targetRecord,
    action: "resolve",
    outcome: "key_lost",
    oldFingerprint: lost.oldFingerprint,
    requestId: lost.requestId,
    errorCode: "KEY_LOST",
  });
  killPoint("resolve.key-lost-audited");
  await updateStore(context.store, (draft) => {
    const record = writableRecord(draft, faucet, targetRecord);
    if (record?.keyLost?.requestId === lost.requestId) record.keyLost.audited = true;
  });
}

/**
 * The recovery procedure; the caller holds the principal's rotation lock and read `view`
 * under it.
 */
async function resolveIntentLocked(
  context: EngineContext,
  view: SnapshotView,
  targetRecord: string,
): Promise<PendingResolution> {
  const { faucet } = view;
  const stored = recordAt(view, targetRecord);
  const intent = stored?.intent;
  if (!stored || !intent)
    throw new RekeyError("INTERNAL", `No unfinished rotation for ${targetRecord}`);
  const target = principalOfRecord(intent.principal);
  const actor = principalOfRecord(intent.actor);
  const label = principalLabel(target);
  const base = { principal: target, label, requestId: intent.requestId };
  const client = context.client(view);

  /** Verifies a stored key, writes the rotation's entry if owed, clears the journal. */
  const finish = async (record: RotationRecord, apiKey: string, written: StoreSnapshot) => {
    const verified = await verifyKey(client, target, apiKey);
    await auditOnce(context, {
      principal: targetRecord,
      action: "resolve",
      outcome: "recovered",
      oldFingerprint: intent.oldFingerprint,
      newFingerprint: record.newFingerprint,
      cooldownUntil: record.cooldownUntil,
      requestId: intent.requestId,
    });
    killPoint("resolve.recovered-audited");
    await finishIntent(context, faucet, targetRecord, { ...record, verified }, written);
  };

  if (intent.phase === "stored" && stored.key !== undefined && stored.fingerprint !== undefined) {
    // The new key reached the store; verification, the audit entry and clean-up were left.
    const verified = await verifyKey(client, target, stored.key);
    await auditOnce(context, {
      principal: targetRecord,
      action: "resolve",
      outcome: "recovered",
      oldFingerprint: intent.oldFingerprint,
      newFingerprint: stored.fingerprint,
      requestId: intent.requestId,
    });
    killPoint("resolve.stored-audited");
    if (stored.lastRotation)
      await finishIntent(
        context,
        faucet,
        targetRecord,
        { ...stored.lastRotation, verified },
        view.snapshot,
      );
    else await clearIntent(context, faucet, targetRecord, view.snapshot);
    killPoint("resolve.stored-cleared");
    return { ...base, outcome: "verified", newFingerprint: stored.fingerprint };
  }

  // A key the store refused earlier waits in a rescue file: it is the rotation's new key.
  const rescued = await findRescueFile(context.rescueDir, faucet, intent.requestId);
  if (rescued) {
    const { record, snapshot } = await storeIssuedKey(
      context,
      faucet,
      target,
      intent,
      { apiKey: rescued.file.key, cooldownUntil: rescued.file.lastRotation?.cooldownUntil },
      view.snapshot,
    );
    killPoint("resolve.replay-stored");
    await finish(record, rescued.file.key, snapshot);
    await removeRescueFile(rescued.path);
    return { ...base, outcome: "recovered", newFingerprint: record.newFingerprint };
  }

  // Probe the old key: if it still works, the rotation never happened.
  const oldKey =
    stored.key !== undefined && stored.fingerprint === intent.oldFingerprint
      ? stored.key
      : await matchingEnvKey(context, view, target, intent.oldFingerprint);
  if (oldKey) {
    try {
      await client.whoami(oldKey);
      await audit(context, {
        principal: targetRecord,
        action: "resolve",
        outcome: "not_rotated",
        oldFingerprint: intent.oldFingerprint,
        requestId: intent.requestId,
      });
      killPoint("resolve.not-rotated-audited");
      await clearIntent(context, faucet, targetRecord, view.snapshot);
      return { ...base, outcome: "not_rotated" };
    } catch (error) {
      if (!isRekeyError(error, "UNAUTHORIZED")) throw unresolved(label, error);
    }
  }

  // The old key is dead: ask the faucet for the rotation's reply again by its request_id.
  const actorKey = samePrincipal(actor, target)
    ? oldKey
    : await keyFor(context, view, intent.actor);
  if (actorKey) {
    try {
      const reply =
        target.kind === "agent" && !samePrincipal(actor, target)
          ? await client.regenerateAgentKey(actorKey, {
              agentId: target.agentId,
              requestId: intent.requestId,
            })
          : await client.regenerateOperatorKey(actorKey, { requestId: intent.requestId });
      killPoint("resolve.replayed");
      // An operator's replay to a faucet without request_id support rotates the agent again:
      // that still ends with a working stored key, which is the point.
      const { record, snapshot } = await storeIssuedKey(
        context,
        faucet,
        target,
        intent,
        reply,
        view.snapshot,
      );
      killPoint("resolve.replay-stored");
      await finish(record, reply.apiKey, snapshot);
      return { ...base, outcome: "recovered", newFingerprint: record.newFingerprint };
    } catch (error) {
      if (!isRekeyError(error, "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND"))
        throw unresolved(label, error);
    }
  }

  // Lost. One write records the loss, drops the dead key and the journal: from this instant
  // every status shows KEY_LOST (never "no key" with nothing said). The audit entry follows;
  // a kill before it leaves `audited: false`, and the next run writes it.
  const lost: KeyLostRecord = {
    requestId: intent.requestId,
    oldFingerprint: intent.oldFingerprint,
    lostAt: new Date(context.clock.now()).toISOString(),
    recovery: recoveryOf(target),
    surface: intent.surface,
    audited: false,
  };
  await updateStore(
    context.store,
    (draft) => {
      const record = writableRecord(draft, faucet, targetRecord);
      if (!record) return;
      delete record.intent;
      if (record.fingerprint === intent.oldFingerprint) setKey(record, undefined);
      if (record.key === undefined) record.keyLost = lost;
    },
    () => context.invalidateKeys(),
  );
  killPoint("resolve.key-lost-recorded");
  await settleKeyLost(context, faucet, targetRecord, lost);
  throw keyLostError(target, intent.requestId);
}

/** How to get back in after a principal's key was lost. */
export function recoveryOf(target: Principal): string {
  return target.kind === "operator"
    ? "Run `rekey recover` with the operator's recovery code: it issues a new operator key."
    : `Rotate the agent's key as its operator (\`rekey rotate --agent ${target.agentId}\`): that issues a new agent key.`;
}

export function keyLostError(target: Principal, requestId: string): RekeyError {
  const recovery = recoveryOf(target);
  return new RekeyError(
    "KEY_LOST",
    `${capitalized(principalLabel(target))}'s key was rotated but the new key never reached the store, and the faucet cannot replay it`,
    { hint: recovery, details: { principal: principalLabel(target), recovery, requestId } },
  );
}

function unresolved(label: string, cause: unknown): RekeyError {
  const code = isRekeyError(cause) ? cause.code : "UPSTREAM_UNAVAILABLE";
  return new RekeyError(
    code,
    `An unfinished rotation of the ${label} could not be resolved now: ${isRekeyError(cause) ? cause.message : "the faucet did not answer"}`,
    {
      hint: "It stays journaled; retry when the faucet is reachable (`rekey doctor --repair`).",
      cause,
    },
  );
}

async function matchingEnvKey(
  context: EngineContext,
  view: ProfileView,
  principal: Principal,
  fp: string,
): Promise<string | undefined> {
  const key = await context.envKey(principal, view);
  return key !== undefined && fingerprint(key) === fp ? key : undefined;
}

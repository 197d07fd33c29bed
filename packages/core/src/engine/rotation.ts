import { randomUUID } from "node:crypto";
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
  PrincipalRecord,
  RotationIntent,
  RotationRecord,
} from "../store/types.js";
import { type EngineContext, type RotationStep, rotationLockName } from "./context.js";
import {
  type ProfileView,
  principalOfRecord,
  profileIn,
  recordIn,
  setKey,
  updateStore,
  writableRecord,
} from "./principal-records.js";
import type { PendingResolution } from "./types.js";

/** A rotation as the engine hands it back, raw key included; the facade strips it. */
export interface CompletedRotation {
  principal: Principal;
  record: RotationRecord;
  apiKey: string;
  shared: boolean;
}

export interface RotationParams {
  target: Principal;
  actor: Principal;
  /** The target's record principal ("operator:12", "agent:7"). */
  targetRecord: string;
  /** The actor's record principal. */
  actorRecord: string;
  /** The target's fingerprint as the caller read it before taking the lock. */
  expectedFingerprint: string | undefined;
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
  await context.hooks.afterStep?.(name, principal);
}

/** Appends an audit entry; a failing audit write never undoes a finished rotation. */
export async function audit(
  context: EngineContext,
  event: Omit<AuditEventInput, "at" | "surface" | "profile">,
): Promise<void> {
  try {
    await context.store.appendAudit({
      at: new Date(context.clock.now()).toISOString(),
      surface: context.surface,
      profile: context.profileName,
      ...event,
    });
  } catch {
    // The credential store already holds the rotation record; the audit log is a second copy.
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
  return context.envKey(principalOfRecord(recordPrincipal));
}

/**
 * Runs one rotation under the principal's store lock: journal, upstream call, atomic store,
 * verify, clear, audit. Returns another caller's rotation instead when the key changed since
 * the caller read it.
 */
export async function rotateUnderLock(
  context: EngineContext,
  params: RotationParams,
): Promise<CompletedRotation> {
  const { target, targetRecord } = params;
  const faucet = (await context.readView()).faucet;
  const lock = await context.store.lock(rotationLockName(recordIdOf(faucet, targetRecord)), {
    leaseMs: context.lockLeaseMs,
    waitMs: context.lockWaitMs,
  });
  try {
    // A holder that crashed while we waited may have left an intent: resolve it first.
    let view = await context.readView();
    if (recordAt(view, targetRecord)?.intent) {
      await resolveIntentLocked(context, targetRecord);
      view = await context.readView();
    }
    const current = recordAt(view, targetRecord);
    if (
      current?.key !== undefined &&
      current.fingerprint !== params.expectedFingerprint &&
      current.lastRotation
    ) {
      return {
        principal: target,
        record: current.lastRotation,
        apiKey: current.key,
        shared: true,
      };
    }
    const actorKey = await keyFor(context, view, params.actorRecord);
    if (!actorKey)
      throw new RekeyError("NOT_FOUND", `No key is held for the ${principalLabel(params.actor)}`);
    const oldFingerprint =
      current?.fingerprint ??
      (samePrincipal(params.actor, target) ? fingerprint(actorKey) : "none");
    const intent: RotationIntent = {
      requestId: randomUUID(),
      principal: targetRecord,
      actor: params.actorRecord,
      oldFingerprint,
      startedAt: new Date(context.clock.now()).toISOString(),
      phase: "requested",
      surface: context.surface,
    };
    const baseUrl = await context.baseUrl();
    await updateStore(context.store, (draft) => {
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

    const client = await context.client();
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
        await clearIntent(context, faucet, targetRecord);
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
      const resolution = await resolveIntentLocked(context, targetRecord);
      if (resolution.outcome === "not_rotated") throw error;
      const after = recordAt(await context.readView(), targetRecord);
      if (after?.key === undefined || !after.lastRotation) throw error;
      return { principal: target, record: after.lastRotation, apiKey: after.key, shared: false };
    }
    await step(context, "upstream-replied", target);

    const record = await storeRotatedKey(context, faucet, target, intent, reply);
    await step(context, "key-stored", target);
    const verified = await verifyKey(context, target, reply.apiKey);
    await step(context, "verified", target);
    const finalRecord = { ...record, verified };
    await finishIntent(context, faucet, targetRecord, finalRecord);
    await step(context, "intent-cleared", target);
    await audit(context, {
      principal: targetRecord,
      action: "rotate",
      outcome: "success",
      oldFingerprint,
      newFingerprint: record.newFingerprint,
      cooldownUntil: record.cooldownUntil,
      requestId: intent.requestId,
    });
    return { principal: target, record: finalRecord, apiKey: reply.apiKey, shared: false };
  } finally {
    await lock.release();
  }
}

/**
 * Writes the new key, its cooldown and the rotation record in one atomic update, retrying a
 * failing store for a few seconds: the old key is already dead, so giving up loses access.
 * @throws RekeyError STORE_UNAVAILABLE when the store never accepts the write (the intent stays
 * journaled, so a later run replays the rotation where the server allows it).
 */
async function storeRotatedKey(
  context: EngineContext,
  faucet: string,
  target: Principal,
  intent: RotationIntent,
  reply: { apiKey: string; cooldownUntil?: string | undefined },
): Promise<RotationRecord> {
  const rotatedAt = new Date(context.clock.now()).toISOString();
  const cooldownUntil =
    reply.cooldownUntil ??
    new Date(context.clock.now() + cooldownMinutes(target) * 60_000).toISOString();
  const record: RotationRecord = {
    requestId: intent.requestId,
    oldFingerprint: intent.oldFingerprint,
    newFingerprint: fingerprint(reply.apiKey),
    rotatedAt,
    cooldownUntil,
    verified: false,
    surface: intent.surface,
  };
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await updateStore(
        context.store,
        (draft) => {
          const stored = recordIn(draft, faucet, intent.principal);
          setKey(stored, {
            key: reply.apiKey,
            fingerprint: record.newFingerprint,
            savedAt: rotatedAt,
            source: "rotate",
          });
          stored.lastRotation = record;
          stored.cooldownUntil = cooldownUntil;
          if (stored.intent) stored.intent.phase = "stored";
        },
        () => context.invalidateKeys(),
      );
      return record;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }
  throw new RekeyError(
    "STORE_UNAVAILABLE",
    `${capitalized(principalLabel(target))} was rotated (new key ${record.newFingerprint}) but the credential store refused the new key`,
    {
      hint: "Fix the store (disk space, permissions), then run `rekey doctor --repair`: the rotation is journaled and will be replayed where the faucet allows it.",
      details: { principal: principalLabel(target) },
      cause: lastError,
    },
  );
}

/** `whoami` with the new key must answer as the rotated principal. */
async function verifyKey(
  context: EngineContext,
  target: Principal,
  apiKey: string,
): Promise<boolean> {
  try {
    const identity = await (await context.client()).whoami(apiKey);
    return target.kind === "operator"
      ? identity.type === "operator"
      : identity.type === "agent" && identity.id === target.agentId;
  } catch {
    // Unverified is reported, not fatal: the key is stored and the old one is dead anyway.
    return false;
  }
}

async function finishIntent(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
  record: RotationRecord,
): Promise<void> {
  await updateStore(
    context.store,
    (draft) => {
      const stored = writableRecord(draft, faucet, targetRecord);
      if (!stored) return;
      delete stored.intent;
      if (stored.lastRotation?.requestId === record.requestId) stored.lastRotation = record;
    },
    () => context.invalidateKeys(),
  );
}

async function clearIntent(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
): Promise<void> {
  await updateStore(context.store, (draft) => {
    const stored = writableRecord(draft, faucet, targetRecord);
    if (stored) delete stored.intent;
  });
}

/**
 * Resolves the unfinished rotation of one principal under its lock.
 * @throws RekeyError KEY_LOST when the old key is dead and the new one cannot be had;
 * UPSTREAM_* when the faucet cannot be asked now (the intent stays).
 */
export async function resolveIntent(
  context: EngineContext,
  targetRecord: string,
): Promise<PendingResolution | undefined> {
  const faucet = (await context.readView()).faucet;
  const lock = await context.store.lock(rotationLockName(recordIdOf(faucet, targetRecord)), {
    leaseMs: context.lockLeaseMs,
    waitMs: context.lockWaitMs,
  });
  try {
    if (!recordAt(await context.readView(), targetRecord)?.intent) return undefined;
    return await resolveIntentLocked(context, targetRecord);
  } finally {
    await lock.release();
  }
}

/** The recovery procedure; the caller holds the principal's rotation lock. */
async function resolveIntentLocked(
  context: EngineContext,
  targetRecord: string,
): Promise<PendingResolution> {
  const view = await context.readView();
  const { faucet } = view;
  const stored = recordAt(view, targetRecord);
  const intent = stored?.intent;
  if (!stored || !intent)
    throw new RekeyError("INTERNAL", `No unfinished rotation for ${targetRecord}`);
  const target = principalOfRecord(intent.principal);
  const actor = principalOfRecord(intent.actor);
  const label = principalLabel(target);
  const base = { principal: target, label, requestId: intent.requestId };
  const client = await context.client();

  if (intent.phase === "stored" && stored.key !== undefined && stored.fingerprint !== undefined) {
    // The new key reached the store; only verification and clean-up were left.
    const verified = await verifyKey(context, target, stored.key);
    if (stored.lastRotation)
      await finishIntent(context, faucet, targetRecord, { ...stored.lastRotation, verified });
    await audit(context, {
      principal: targetRecord,
      action: "resolve",
      outcome: "recovered",
      oldFingerprint: intent.oldFingerprint,
      newFingerprint: stored.fingerprint,
      requestId: intent.requestId,
    });
    return { ...base, outcome: "verified", newFingerprint: stored.fingerprint };
  }

  // Probe the old key: if it still works, the rotation never happened.
  const oldKey =
    stored.key !== undefined && stored.fingerprint === intent.oldFingerprint
      ? stored.key
      : await matchingEnvKey(context, target, intent.oldFingerprint);
  if (oldKey) {
    try {
      await client.whoami(oldKey);
      await clearIntent(context, faucet, targetRecord);
      await audit(context, {
        principal: targetRecord,
        action: "resolve",
        outcome: "not_rotated",
        oldFingerprint: intent.oldFingerprint,
        requestId: intent.requestId,
      });
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
      // An operator's replay to a faucet without request_id support rotates the agent again:
      // that still ends with a working stored key, which is the point.
      const record = await storeRotatedKey(context, faucet, target, intent, reply);
      const verified = await verifyKey(context, target, reply.apiKey);
      await finishIntent(context, faucet, targetRecord, { ...record, verified });
      await audit(context, {
        principal: targetRecord,
        action: "resolve",
        outcome: "recovered",
        oldFingerprint: intent.oldFingerprint,
        newFingerprint: record.newFingerprint,
        cooldownUntil: record.cooldownUntil,
        requestId: intent.requestId,
      });
      return { ...base, outcome: "recovered", newFingerprint: record.newFingerprint };
    } catch (error) {
      if (!isRekeyError(error, "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND"))
        throw unresolved(label, error);
    }
  }

  // Lost. Record it, drop the dead key, and say how to get back in; never drop it silently.
  await updateStore(
    context.store,
    (draft) => {
      const record = writableRecord(draft, faucet, targetRecord);
      if (!record) return;
      delete record.intent;
      if (record.fingerprint === intent.oldFingerprint) setKey(record, undefined);
    },
    () => context.invalidateKeys(),
  );
  await audit(context, {
    principal: targetRecord,
    action: "resolve",
    outcome: "key_lost",
    oldFingerprint: intent.oldFingerprint,
    requestId: intent.requestId,
    errorCode: "KEY_LOST",
  });
  throw keyLostError(target, intent.requestId);
}

export function keyLostError(target: Principal, requestId: string): RekeyError {
  const recovery =
    target.kind === "operator"
      ? "Run `rekey recover` with the operator's recovery code: it issues a new operator key."
      : `Rotate the agent's key as its operator (\`rekey rotate --agent ${target.agentId}\`): that issues a new agent key.`;
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
  principal: Principal,
  fp: string,
): Promise<string | undefined> {
  const key = await context.envKey(principal);
  return key !== undefined && fingerprint(key) === fp ? key : undefined;
}

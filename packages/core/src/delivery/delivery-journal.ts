import type { Clock } from "../clock.js";
import type { DeliveryStep } from "../engine/context.js";
import { updateStore } from "../engine/principal-records.js";
import { isRekeyError, RekeyError, redactKeys, toRekeyError } from "../errors.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { thawedCopy } from "../store/freeze.js";
import type {
  AuditEventInput,
  CredentialStore,
  DeepReadonly,
  PrincipalRecord,
  Surface,
} from "../store/types.js";
import { deliverToTarget } from "./deliver-to-target.js";
import type { DeliveryEnvironment, DeliveryPayload } from "./delivery-payload.js";
import { heldFingerprintsOf, keyOwnersBeside } from "./known-keys.js";
import { type DeliveryState, type DeliveryTarget, describeTarget } from "./target-schema.js";

/**
 * The delivery journal. After a rotation is committed and verified, each target of the
 * principal is marked `pending` in the store (and the audit log), then `delivered` with the
 * fingerprint it received, or `failed` with the error and a back-off. A process killed in
 * between leaves `pending`, or a target whose delivered fingerprint is not the record's: the
 * next process that opens the store delivers it ({@link finishDeliveries}).
 *
 * Ordering: deliveries of one principal run under one store lock, and each reads the key from
 * the store under that lock, so a target only ever receives the newest key, never an older one
 * after a newer (two rotations while a target is down: it receives the second key only).
 */

/** What the journal needs; built from the engine's context or by a front end. */
export interface DeliveryJournalContext {
  store: CredentialStore;
  clock: Clock;
  surface: Surface;
  profileName: string;
  lockLeaseMs: number;
  lockWaitMs: number;
  environment: DeliveryEnvironment;
  /** Test seam: called after each step of a target's delivery (a crash test kills the process here). */
  afterStep?: ((step: DeliveryStep, recordPrincipal: string) => void | Promise<void>) | undefined;
}

/** One target after a delivery run, as front ends list it (no key). */
export interface DeliveryOutcome {
  target: string;
  kind: DeliveryTarget["kind"];
  description: string;
  /** `delivered` now, `failed` now, `current` (held it already), `deferred` (backing off). */
  status: "delivered" | "failed" | "current" | "deferred";
  fingerprint: string;
  error?: { code: string; message: string } | undefined;
  nextAttemptAt?: string | undefined;
}

/** What to deliver. */
export interface DeliverOptions {
  /** Only this target id. */
  only?: string | undefined;
  /** Deliver even to a target that holds the key already (`test`, and a target just added). */
  force?: boolean | undefined;
  /** Deliver to a stale target even while it is backing off (`retry`). */
  retry?: boolean | undefined;
  /**
   * Only targets left behind (never attempted at the current key, or pending: the process
   * delivering was killed), not those that failed and are backing off.
   */
  leftoversOnly?: boolean | undefined;
}

const FIRST_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 60 * 60_000;

/** The wait after the n-th failed attempt at one key: 30 s, doubling, at most an hour. */
export function deliveryBackoffMs(attempts: number): number {
  return Math.min(FIRST_BACKOFF_MS * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

/** The store lock that orders the deliveries of one principal record. */
export function deliveryLockName(recordId: string): string {
  return `deliver.${recordId}`;
}

/** Whether a target holds `fingerprint`. */
export function holdsKey(target: DeepReadonly<DeliveryTarget>, fingerprint: string | undefined) {
  return fingerprint !== undefined && target.state?.deliveredFingerprint === fingerprint;
}

/** Whether the target was left behind: never tried at this key, or its delivery was cut off. */
export function deliveryLeftBehind(
  target: DeepReadonly<DeliveryTarget>,
  fingerprint: string | undefined,
): boolean {
  if (fingerprint === undefined || holdsKey(target, fingerprint)) return false;
  return !(target.state?.status === "failed" && target.state.fingerprint === fingerprint);
}

/** Whether a run without `force` would deliver to this target now. */
export function deliveryDue(
  target: DeepReadonly<DeliveryTarget>,
  fingerprint: string | undefined,
  nowMs: number,
): boolean {
  if (fingerprint === undefined || holdsKey(target, fingerprint)) return false;
  const next = target.state?.fingerprint === fingerprint ? target.state.nextAttemptAt : undefined;
  return next === undefined || Date.parse(next) <= nowMs;
}

async function auditDelivery(
  context: DeliveryJournalContext,
  event: Omit<AuditEventInput, "at" | "surface" | "profile" | "action">,
): Promise<void> {
  try {
    await context.store.appendAudit({
      at: new Date(context.clock.now()).toISOString(),
      surface: context.surface,
      profile: context.profileName,
      action: "deliver",
      ...event,
    });
  } catch {
    // The target's state in the store is the record; the audit log is its history.
  }
}

/** Writes a target's state, if the target is still there. */
async function setState(
  context: DeliveryJournalContext,
  recordId: string,
  targetId: string,
  state: DeliveryState,
): Promise<void> {
  await updateStore(context.store, (draft) => {
    const frozen = draft.principals[recordId];
    if (!frozen?.deliveries?.some((target) => target.id === targetId)) return;
    const record = Object.isFrozen(frozen) ? thawedCopy(frozen) : frozen;
    draft.principals[recordId] = record;
    const target = record.deliveries?.find((candidate) => candidate.id === targetId);
    if (target) target.state = state;
  });
}

function payloadOf(
  record: DeepReadonly<PrincipalRecord> & { key: string; fingerprint: string },
  keyOwners: Record<string, string>,
): DeliveryPayload {
  return {
    heldFingerprints: heldFingerprintsOf(record),
    keyOwners,
    key: record.key,
    fingerprint: record.fingerprint,
    principal: record.principal,
    faucet: record.faucet,
    name: record.name,
    operatorId: record.operatorId,
    rotation: record.lastRotation,
    cooldownUntil: record.cooldownUntil,
  };
}

/** The error as a target's state keeps it: code and a key-free message. */
function errorFacts(error: unknown, key: string): { code: string; message: string } {
  const rekeyError = toRekeyError(error);
  const message = redactKeys(rekeyError.message.split(key).join("[key]")).slice(0, 2000);
  return { code: rekeyError.code, message };
}

/**
 * Delivers the record's current key to its targets that do not hold it (or, with `force`, to
 * every target), journaling each step.
 * @returns one outcome per target considered; never throws for a target's failure (it is in
 *   the outcome and the store).
 * @throws RekeyError NOT_FOUND for an `only` id the record does not have; ROTATION_IN_PROGRESS
 *   when another process holds the principal's delivery lock past the wait; store errors.
 */
export async function deliverRecord(
  context: DeliveryJournalContext,
  recordId: string,
  options: DeliverOptions = {},
): Promise<DeliveryOutcome[]> {
  const lock = await context.store.lock(deliveryLockName(recordId), {
    leaseMs: context.lockLeaseMs,
    waitMs: context.lockWaitMs,
  });
  try {
    const first = (await context.store.read()).data.principals[recordId];
    const ids = (first?.deliveries ?? []).map((target) => target.id);
    if (options.only !== undefined && !ids.includes(options.only)) {
      throw new RekeyError(
        "NOT_FOUND",
        `No delivery target ${options.only} for ${recordId.split("#")[1] ?? recordId}`,
        {
          hint: "List them with `rekey deliver list`.",
        },
      );
    }
    const outcomes: DeliveryOutcome[] = [];
    for (const id of options.only === undefined ? ids : [options.only]) {
      // Read again for each target: a rotation may have committed a newer key meanwhile.
      const { data } = await context.store.read();
      const record = data.principals[recordId];
      const target = record?.deliveries?.find((candidate) => candidate.id === id);
      if (!record || !target || record.key === undefined || record.fingerprint === undefined)
        continue;
      const held = { ...record, key: openKey(record.key), fingerprint: record.fingerprint };
      const owners = keyOwnersBeside(data, recordId);
      outcomes.push(await deliverOne(context, recordId, held, owners, target, options));
    }
    return outcomes;
  } finally {
    await lock.release();
  }
}

async function deliverOne(
  context: DeliveryJournalContext,
  recordId: string,
  record: DeepReadonly<PrincipalRecord> & { key: string; fingerprint: string },
  keyOwners: Record<string, string>,
  target: DeepReadonly<DeliveryTarget>,
  options: DeliverOptions,
): Promise<DeliveryOutcome> {
  const description = describeTarget(target as DeliveryTarget);
  const base = {
    target: target.id,
    kind: target.kind,
    description,
    fingerprint: record.fingerprint,
  };
  const nowMs = context.clock.now();
  const due = options.retry
    ? !holdsKey(target, record.fingerprint)
    : options.leftoversOnly
      ? deliveryLeftBehind(target, record.fingerprint)
      : deliveryDue(target, record.fingerprint, nowMs);
  if (options.force !== true && !due) {
    return holdsKey(target, record.fingerprint)
      ? { ...base, status: "current" }
      : {
          ...base,
          status: "deferred",
          error: target.state?.error ? { ...target.state.error } : undefined,
          nextAttemptAt: target.state?.nextAttemptAt,
        };
  }
  const previous = target.state;
  const attempts = previous?.fingerprint === record.fingerprint ? previous.attempts : 0;
  const requestId =
    record.lastRotation?.newFingerprint === record.fingerprint
      ? record.lastRotation.requestId
      : undefined;
  const auditBase = {
    principal: record.principal,
    deliveryTarget: `${target.id} ${description}`.slice(0, 300),
    newFingerprint: record.fingerprint,
    ...(previous?.deliveredFingerprint ? { oldFingerprint: previous.deliveredFingerprint } : {}),
    ...(requestId ? { requestId } : {}),
  };
  const kept = previous?.deliveredFingerprint
    ? { deliveredFingerprint: previous.deliveredFingerprint }
    : {};
  await setState(context, recordId, target.id, {
    status: "pending",
    fingerprint: record.fingerprint,
    ...kept,
    ...(requestId ? { requestId } : {}),
    at: new Date(nowMs).toISOString(),
    attempts,
  });
  await auditDelivery(context, { ...auditBase, outcome: "pending" });
  await context.afterStep?.("delivery-pending", record.principal);
  try {
    await deliverToTarget(
      target as DeliveryTarget,
      payloadOf(record, keyOwners),
      context.environment,
    );
  } catch (error) {
    const facts = errorFacts(error, record.key);
    const failedAt = context.clock.now();
    const nextAttemptAt = new Date(failedAt + deliveryBackoffMs(attempts + 1)).toISOString();
    await setState(context, recordId, target.id, {
      status: "failed",
      fingerprint: record.fingerprint,
      ...kept,
      ...(requestId ? { requestId } : {}),
      at: new Date(failedAt).toISOString(),
      attempts: attempts + 1,
      nextAttemptAt,
      error: facts,
    });
    await auditDelivery(context, { ...auditBase, outcome: "failure", errorCode: facts.code });
    return { ...base, status: "failed", error: facts, nextAttemptAt };
  }
  await context.afterStep?.("delivery-written", record.principal);
  await setState(context, recordId, target.id, {
    status: "delivered",
    fingerprint: record.fingerprint,
    deliveredFingerprint: record.fingerprint,
    ...(requestId ? { requestId } : {}),
    at: new Date(context.clock.now()).toISOString(),
    attempts: 0,
  });
  await auditDelivery(context, { ...auditBase, outcome: "success" });
  return { ...base, status: "delivered" };
}

/**
 * Finishes what earlier processes left: every record of the store with a target that does not
 * hold its key and is not backing off gets a delivery run (with `leftoversOnly`, only targets
 * never tried at the current key or cut off mid-delivery: what a short-lived command does, so
 * that a failing target does not slow every command down). Returns the outcomes of the targets
 * it delivered to. A record whose delivery lock is held elsewhere is skipped (its holder is
 * delivering); nothing here throws for a target's failure.
 */
export async function finishDeliveries(
  context: DeliveryJournalContext,
  options: { leftoversOnly?: boolean } = {},
): Promise<DeliveryOutcome[]> {
  const snapshot = await context.store.read();
  const nowMs = context.clock.now();
  const outcomes: DeliveryOutcome[] = [];
  for (const [recordId, record] of Object.entries(snapshot.data.principals)) {
    const due = record.deliveries?.some((target) =>
      options.leftoversOnly
        ? deliveryLeftBehind(target, record.fingerprint)
        : deliveryDue(target, record.fingerprint, nowMs),
    );
    if (!due) continue;
    try {
      const done = await deliverRecord(
        { ...context, lockWaitMs: Math.min(context.lockWaitMs, 1000) },
        recordId,
        { leftoversOnly: options.leftoversOnly },
      );
      outcomes.push(
        ...done.filter((outcome) => outcome.status === "delivered" || outcome.status === "failed"),
      );
    } catch (error) {
      if (!isRekeyError(error, "ROTATION_IN_PROGRESS")) throw error;
    }
  }
  return outcomes;
}

/** Where a target stands against its record's key, for `status` and `doctor`. */
export interface DeliveryStatus {
  target: string;
  kind: DeliveryTarget["kind"];
  description: string;
  /** `current`: holds the key; `stale`: holds an older one (or a delivery is under way); `failing`: the last attempt failed. */
  state: "current" | "stale" | "failing";
  deliveredFingerprint?: string | undefined;
  /** When the last attempt ended (or started, while pending). */
  at?: string | undefined;
  error?: { code: string; message: string } | undefined;
  nextAttemptAt?: string | undefined;
}

/** The delivery status of each target of a record. */
export function deliveryStatusOf(record: DeepReadonly<PrincipalRecord>): DeliveryStatus[] {
  return (record.deliveries ?? []).map((target) => {
    const state = target.state;
    const current = holdsKey(target, record.fingerprint);
    const failing = !current && state?.status === "failed";
    return {
      target: target.id,
      kind: target.kind,
      description: describeTarget(target as DeliveryTarget),
      state: current ? "current" : failing ? "failing" : "stale",
      deliveredFingerprint: state?.deliveredFingerprint,
      at: state?.at,
      error: failing && state?.error ? { ...state.error } : undefined,
      nextAttemptAt: failing ? state?.nextAttemptAt : undefined,
    };
  });
}

import type { FaucetClient } from "../client/index.js";
import { sleep } from "../clock.js";
import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { capitalized, cooldownMinutes, type Principal, principalLabel } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { recordIdOf } from "../store/record-ids.js";
import type {
  AuditEventInput,
  DeepReadonly,
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
  recordIn,
  setKey,
  updateStoreFrom,
  writableRecord,
} from "./principal-records.js";
import { removeRescueFile, writeRescueFile } from "./rescue.js";

// The steps a rotation is made of, shared by a rotation (rotation.ts), the resolution of one a
// crash left unfinished (resolve-intent.ts) and a recovery (recover.ts): the faucet's definite
// refusals, the audit log, the lock, storing an issued key, verifying it, clearing the journal.

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

export async function step(
  context: EngineContext,
  name: RotationStep,
  principal: Principal,
): Promise<void> {
  killPoint(`rotate.${name}` as KillPoint);
  await context.hooks.afterStep?.(name, principal);
}

export type AuditEvent = Omit<AuditEventInput, "at" | "surface" | "profile">;

/**
 * Appends an audit entry. Failures are raised, never swallowed (audit fails closed): a
 * rotation's entry is written while its journal still holds what the entry needs, so a
 * failed append leaves the journal for the next run to write it from.
 */
export async function audit(context: EngineContext, event: AuditEvent): Promise<void> {
  killPoint("audit.before-append");
  await context.store.appendAudit(auditInput(context, event));
  killPoint("audit.appended");
}

/** An event as the store appends it: when, from which surface and profile. */
function auditInput(context: EngineContext, event: AuditEvent): AuditEventInput {
  return {
    at: new Date(context.clock.now()).toISOString(),
    surface: context.surface,
    profile: context.profileName,
    ...event,
  };
}

/**
 * Appends the entry of a journaled rotation unless the log already has it (a process killed
 * between the append and clearing the journal wrote it): each committed rotation once.
 */
export async function auditOnce(context: EngineContext, event: AuditEvent): Promise<void> {
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
export function recordAt(
  view: ProfileView,
  recordPrincipal: string,
): DeepReadonly<PrincipalRecord> | undefined {
  return view.data.principals[recordIdOf(view.faucet, recordPrincipal)];
}

/** The key of a record principal: the store's, else the environment's seed when it matches. */
export function keyFor(
  context: EngineContext,
  view: ProfileView,
  recordPrincipal: string,
): Promise<string | undefined> {
  const stored = recordAt(view, recordPrincipal)?.key;
  if (stored !== undefined) {
    // Opened here, where the key is used (a read leaves it sealed): a failure rejects.
    try {
      return Promise.resolve(openKey(stored));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return context.envKey(principalOfRecord(recordPrincipal), view);
}

/**
 * Takes the rotation lock of a record principal on the view's faucet. `read`: the holder reads
 * the store next, and the store may hand that snapshot back with the lock (`StoreLock.snapshot`).
 */
export function lockRecord(
  context: EngineContext,
  faucet: string,
  recordPrincipal: string,
  read = false,
) {
  return context.store.lock(rotationLockName(recordIdOf(faucet, recordPrincipal)), {
    leaseMs: context.lockLeaseMs,
    waitMs: context.lockWaitMs,
    ...(read ? { read } : {}),
  });
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
 * A store locked by its master key (STORE_LOCKED) is not retried: the key goes to the rescue
 * file at once.
 * @throws RekeyError STORE_UNAVAILABLE when the store never accepts the write, STORE_LOCKED when
 * it is sealed under a master key not given: the intent stays journaled and the error names the
 * rescue file (`rekey rescue import`).
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
    writeRescueFile(context.rescueDir, context.store, {
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
    // A store locked by its master key stays locked until someone gives the key: no retry
    // cures it, so the key goes to the rescue file at once, not after a minute of retries.
    const locked = isRekeyError(lastError, "STORE_LOCKED");
    const elapsed = context.clock.now() - started;
    if (
      rescuePath === undefined &&
      (locked || elapsed >= RESCUE_AFTER_MS || elapsed >= context.storeRetryMs)
    ) {
      rescuePath = await rescue().catch(() => undefined);
      if (rescuePath !== undefined) killPoint("rescue.written");
    }
    if (locked || elapsed >= context.storeRetryMs) break;
    const wait = Math.min(5_000, 100 * 2 ** attempt, context.storeRetryMs - elapsed);
    await sleep(context.clock, Math.max(10, wait));
  }
  const where =
    rescuePath === undefined
      ? "no rescue file could be written either"
      : `the new key was written to ${rescuePath}`;
  if (isRekeyError(lastError, "STORE_LOCKED")) {
    throw new RekeyError(
      "STORE_LOCKED",
      `${capitalized(principalLabel(target))} was rotated (new key ${record.newFingerprint}) but the credential store is locked: it was sealed under a master key this process was not given (${lastError.message}); ${where}`,
      {
        hint:
          rescuePath === undefined
            ? "Give rekey the store's master key (its master.key file, REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD), then run `rekey doctor --repair`: the rotation is journaled and will be replayed where the faucet allows it."
            : `Give rekey the store's master key (its master.key file, REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD), then run \`rekey rescue import ${rescuePath}\` (or any rekey command: the journaled rotation picks the rescue file up).`,
        details: {
          principal: principalLabel(target),
          ...(rescuePath === undefined ? {} : { rescueFile: rescuePath }),
        },
        cause: lastError,
      },
    );
  }
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

/**
 * Clears a finished rotation's journal; resolves with the snapshot written. The caller has
 * stored the key (journal phase `stored`, written durably) and appended the audit entry
 * (durably) first. So this write is not made durable (`durable: false`: no directory fsync on
 * the file store, an asynchronous commit on PostgreSQL): a crash or power cut that loses it
 * leaves the `stored` journal, which the next run resolves (verify, `auditOnce` finds the
 * entry and writes none, clear again); the key and the entry are already on disk. What a lost
 * clear takes with it is the `verified` flag, which that resolution measures again.
 */
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
    (draft) => clearFinished(draft, faucet, targetRecord, record),
    () => context.invalidateKeys(),
    { durable: false },
  );
  return written.snapshot;
}

/**
 * {@link finishIntent} with the rotation's audit entry appended by the same write, on a store
 * whose `appendsAuditWithWrite` is true. Not durable either, for the same reason: a lost write
 * loses the clearing, and with it the entry (PostgreSQL: one commit) or not (the file store:
 * the entry is fsynced before the rename); the `stored` journal it leaves makes whoever
 * resolves it write the entry if the log lacks it. The audit kill points stay where the
 * append is.
 */
export async function finishIntentWithEntry(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
  record: RotationRecord,
  event: AuditEvent,
  base?: StoreSnapshot,
): Promise<StoreSnapshot> {
  killPoint("audit.before-append");
  let written: { snapshot: StoreSnapshot };
  try {
    written = await updateStoreFrom(
      context.store,
      base,
      (draft) => {
        // A rotation that stalled past its lock's lease (a suspended laptop) may find its
        // journal resolved by another process, which wrote the entry before clearing it: this
        // write, with the entry, must then not be made (the batch drops a change that throws).
        const stored = draft.principals[recordIdOf(faucet, targetRecord)];
        if (stored !== undefined && stored.intent?.requestId !== record.requestId) {
          throw new ResolvedElsewhere();
        }
        clearFinished(draft, faucet, targetRecord, record);
      },
      () => context.invalidateKeys(),
      { durable: false, audit: [auditInput(context, event)] },
    );
  } catch (error) {
    if (!(error instanceof ResolvedElsewhere)) throw error;
    return context.store.read();
  }
  killPoint("audit.appended");
  return written.snapshot;
}

/** The journal {@link finishIntentWithEntry} was to clear is gone: resolved by someone else. */
class ResolvedElsewhere extends Error {}

/** The journal of a finished rotation removed, its record (now verified or not) kept. */
function clearFinished(
  draft: StoreData,
  faucet: string,
  targetRecord: string,
  record: RotationRecord,
): void {
  const stored = writableRecord(draft, faucet, targetRecord);
  if (!stored) return;
  delete stored.intent;
  if (stored.lastRotation?.requestId === record.requestId) stored.lastRotation = record;
}

/**
 * Clears a journal the faucet definitely refused. `dropCreated`: the record was made by the
 * journal's own write (an agent named by id that the store did not hold); a refusal (an agent
 * of another operator, one that does not exist) leaves nothing of it behind.
 */
export async function clearIntent(
  context: EngineContext,
  faucet: string,
  targetRecord: string,
  base?: StoreSnapshot,
  dropCreated = false,
): Promise<void> {
  await updateStoreFrom(context.store, base, (draft) => {
    const stored = writableRecord(draft, faucet, targetRecord);
    if (!stored) return;
    delete stored.intent;
    if (dropCreated && stored.key === undefined && holdsOnlyIdentity(stored)) {
      delete draft.principals[recordIdOf(faucet, targetRecord)];
    }
  });
}

/** Nothing in a record but what names it (the journal's write adds the operator id). */
function holdsOnlyIdentity(record: object): boolean {
  return Object.keys(record).every((field) => IDENTITY_FIELDS.has(field));
}
const IDENTITY_FIELDS = new Set(["faucet", "principal", "operatorId"]);

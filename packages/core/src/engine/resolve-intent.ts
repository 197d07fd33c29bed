import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { capitalized, type Principal, principalLabel, samePrincipal } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type { DeepReadonly, KeyLostRecord, RotationRecord, StoreSnapshot } from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import type { EngineContext } from "./context.js";
import {
  type ProfileView,
  principalOfRecord,
  type SnapshotView,
  setKey,
  updateStore,
  writableRecord,
} from "./principal-records.js";
import { findRescueFile, removeRescueFile } from "./rescue.js";
import {
  audit,
  auditOnce,
  clearIntent,
  finishIntent,
  keyFor,
  lockRecord,
  recordAt,
  storeIssuedKey,
  verifyKey,
} from "./rotation-steps.js";
import type { PendingResolution } from "./types.js";

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
export async function resolveIntentLocked(
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
    const verified = await verifyKey(client, target, openKey(stored.key));
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
  const rescued = await findRescueFile(context.rescueDir, faucet, intent.requestId, targetRecord);
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
      ? openKey(stored.key)
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

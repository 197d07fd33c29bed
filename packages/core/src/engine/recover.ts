import { randomUUID } from "node:crypto";
import type { FaucetClient } from "../client/index.js";
import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { cooldownMinutes, OPERATOR } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { operatorRecordPrincipal, recordIdOf } from "../store/record-ids.js";
import type {
  DeepReadonly,
  RotationIntent,
  RotationRecord,
  StoredKey,
  StoreSnapshot,
} from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import { rotationLockName } from "./context.js";
import {
  type ProfileView,
  profileIn,
  recordIn,
  recordOf,
  setKey,
  storedKeyOf,
  updateStoreFrom,
  writableRecord,
} from "./principal-records.js";
import { dropPendingAudit, writeRescueFile } from "./rescue.js";
import { owedRecoveryEntry, rescueAuditLockName } from "./rescue-audit.js";
import { cooldownActiveError, secondsUntil } from "./rotation-checks.js";
import {
  audit,
  clearIntent,
  finishIntent,
  outcomeUnknown,
  prepareAudit,
  storeIssuedKey,
} from "./rotation-steps.js";
import type { Session } from "./session.js";
import type { Rekey, RotationResult } from "./types.js";

/** `recover`: a recovery code issues the operator a new key, journaled like a rotation. */
export function createRecovery(session: Session): Pick<Rekey, "recover"> {
  const {
    profileName,
    store,
    surface,
    clock,
    readView,
    context,
    deliverRotation,
    withLock,
    profileLockName,
    toResult,
    recordIdFor,
  } = session;
  /**
   * A recovery that issued another operator's key than the profile's: that operator's old key
   * is dead, so its new one is kept, durably and loudly, outside this profile: in a rescue file
   * (in the store beside, only if no rescue file can be written), never in the profile
   * operator's record. The profile operator's journal is cleared (its key was not touched), the
   * recovery is audited under the account it replaced, and the error says where the key is.
   */
  async function keepOtherAccountsKey(
    reply: { operatorId: number; apiKey: string; cooldownUntil?: string | undefined },
    at: {
      view: Awaited<ReturnType<typeof readView>>;
      base: StoreSnapshot;
      journal: RotationIntent | undefined;
      requestId: string;
      /** whoami's answer on the new key, in flight while the key is made durable. */
      verifying: Promise<boolean>;
      /** The account the profile's operator is. */
      profileOperatorId: number;
    },
  ): Promise<RekeyError> {
    const other = operatorRecordPrincipal(reply.operatorId);
    const newFingerprint = fingerprint(reply.apiKey);
    const savedAt = new Date(clock.now()).toISOString();
    const cooldownUntil =
      reply.cooldownUntil ??
      new Date(clock.now() + cooldownMinutes(OPERATOR) * 60_000).toISOString();
    // Not verified yet: the key is made durable first, whoami's answer only read after.
    const lastRotation: RotationRecord = {
      requestId: at.requestId,
      oldFingerprint: "none",
      newFingerprint,
      rotatedAt: savedAt,
      cooldownUntil,
      verified: false,
      surface,
    };
    // The rescue file's own lock, held until the file no longer owes the entry: a listing or
    // an import that finds it owing one writes it only once this process is gone (see
    // rescue-audit.ts). Not having it must not cost the key: the file is written regardless.
    const auditLock = await store
      .lock(rescueAuditLockName(at.requestId), {
        leaseMs: context.lockLeaseMs,
        waitMs: context.lockWaitMs,
      })
      .catch(() => undefined);
    try {
      // Without the lock a listing could write the entry while this process writes it too:
      // the file then owes none (a kill before the entry leaves the recovery unaudited, as a
      // store that refuses the lock leaves no other way).
      return await keepAndAudit(reply, at, {
        other,
        savedAt,
        lastRotation,
        owesAudit: auditLock !== undefined,
      });
    } finally {
      await auditLock?.release();
    }
  }

  /** {@link keepOtherAccountsKey} under the rescue file's lock: keep the key, audit, say where. */
  async function keepAndAudit(
    reply: { operatorId: number; apiKey: string },
    at: Parameters<typeof keepOtherAccountsKey>[1],
    kept: { other: string; savedAt: string; lastRotation: RotationRecord; owesAudit: boolean },
  ): Promise<RekeyError> {
    const { other, savedAt, lastRotation } = kept;
    const { newFingerprint, cooldownUntil } = lastRotation;
    const entry = owedRecoveryEntry({
      principal: other,
      requestId: at.requestId,
      fingerprint: newFingerprint,
      cooldownUntil,
    });
    const rescueFile = await writeRescueFile(context.rescueDir, store, {
      faucet: at.view.faucet,
      principal: other,
      key: reply.apiKey,
      source: "recover",
      savedAt,
      requestId: at.requestId,
      operatorId: reply.operatorId,
      lastRotation,
      // Owed until the entry below is appended (a kill in between: rescue-audit.ts).
      ...(kept.owesAudit ? { pendingAudit: { profile: profileName, surface } } : {}),
    }).catch(() => undefined);
    if (rescueFile !== undefined) killPoint("recover.other-rescued");
    let where = rescueFile === undefined ? undefined : `the rescue file ${rescueFile}`;
    if (rescueFile === undefined) {
      // No rescue file: the store beside is the only durable place left (not the profile's
      // record, not the profile's pointer).
      const url = context.baseUrl(at.view);
      let kept = false;
      where = await updateStoreFrom(store, undefined, (draft) => {
        const record = recordIn(draft, url, other);
        // The recovery killed whatever key this store held for that operator; a rotation of
        // it in flight here owns its record, though, and is not overwritten.
        if (record.intent !== undefined) return;
        kept = true;
        setKey(record, {
          key: reply.apiKey,
          fingerprint: newFingerprint,
          savedAt,
          source: "recover",
        });
        record.operatorId = reply.operatorId;
        record.lastRotation = lastRotation;
        record.cooldownUntil = cooldownUntil;
      }).then(
        () => (kept ? `the store, beside this profile (act as it with --as ${other})` : undefined),
        () => undefined,
      );
    }
    await at.verifying;
    await audit(context, entry);
    // The entry is written: the file no longer owes it. Should this rewrite fail, the next
    // listing finds the entry in the log (by request id) and writes no second one.
    if (rescueFile !== undefined) await dropPendingAudit(rescueFile).catch(() => {});
    if (at.journal !== undefined) {
      await clearIntent(context, at.view.faucet, at.journal.principal, at.base);
    }
    const profileLabel = `operator ${at.profileOperatorId}`;
    return new RekeyError(
      "CONFIG_INVALID",
      `The recovery code is operator ${reply.operatorId}'s, not this profile's (${profileLabel}): the faucet replaced operator ${reply.operatorId}'s key (new key ${newFingerprint}, its old key no longer works) and ${where === undefined ? "it could not be kept anywhere: no rescue file could be written and the store refused it" : `it was kept in ${where}`}. Profile "${profileName}" is unchanged.`,
      {
        hint:
          rescueFile !== undefined
            ? `Store it for its own account: \`rekey --profile NAME rescue import ${rescueFile}\` (a new profile NAME), and give operator ${reply.operatorId}'s users the new key. To recover this profile's operator, use the recovery code \`rekey register\` gave it.`
            : where !== undefined
              ? `Operator ${reply.operatorId}'s new key is in the store beside this profile (\`rekey --as ${other} status\`). To recover this profile's operator, use the recovery code \`rekey register\` gave it.`
              : `Operator ${reply.operatorId}'s owner can recover again with the same code. To recover this profile's operator, use the recovery code \`rekey register\` gave it.`,
        details: {
          principal: "operator",
          recoveredOperatorId: reply.operatorId,
          ...(rescueFile === undefined ? {} : { rescueFile }),
        },
      },
    );
  }

  return {
    async recover(recoveryCode, options = {}) {
      const code = recoveryCode.trim();
      if (code.length === 0 || code.length > 512) {
        throw new RekeyError("INVALID_INPUT", "The recovery code is empty or too long", {
          hint: "Paste the recovery code you were given at registration.",
        });
      }
      const before = await readView();
      const lockName =
        before.operator === undefined
          ? profileLockName()
          : rotationLockName(recordIdOf(before.faucet, before.operator));
      // Under the operator's rotation lock: a rotation finishing after the recovery would
      // store its key, which the recovery has just invalidated.
      const result = await withLock(lockName, async (): Promise<RotationResult> => {
        const view = await readView();
        const old = storedKeyOf(view, OPERATOR);
        // A recovery starts the operator's 60-minute withdrawal block as a rotation does: inside
        // a running one it restarts it, so while the stored key is there to keep using it takes
        // the same deliberate `force`. Without a key (lost, KEY_LOST) recovering is the only way
        // back, and the guard would only stand in its way.
        const cooldownUntil = recordOf(view, OPERATOR)?.cooldownUntil;
        if (
          options.force !== true &&
          old !== undefined &&
          cooldownUntil !== undefined &&
          secondsUntil(cooldownUntil, clock.now()) > 0
        ) {
          throw recoveryInCooldownError(cooldownUntil, clock.now());
        }
        // Recovery invalidates the operator's key: the store must be able to take the new one,
        // and the audit log its entry.
        await store.checkWritable();
        await prepareAudit(context);
        const faucetClient = context.client(view);
        // Whose account the profile is, to tell another account's recovery code from its own.
        const expectedId = await profileOperatorId(view, old, faucetClient);
        // Like a rotation's: the id of this recovery in the audit log, the stored record's
        // last rotation and the faucet's logs, journaled or not.
        const requestId = randomUUID();
        // Journaled like a rotation: the faucet invalidates the old key, so a process killed
        // before the new one is stored leaves an intent that the next run resolves (into a
        // loud KEY_LOST with the way back, the recovery code), never a dead key said nothing of.
        const journal: RotationIntent | undefined =
          view.operator !== undefined && old !== undefined && !recordOf(view, OPERATOR)?.intent
            ? {
                requestId,
                principal: view.operator,
                actor: view.operator,
                oldFingerprint: old.fingerprint,
                startedAt: new Date(clock.now()).toISOString(),
                phase: "requested",
                surface,
              }
            : undefined;
        let base = view.snapshot;
        if (journal) {
          ({ snapshot: base } = await updateStoreFrom(store, base, (draft) => {
            const stored = writableRecord(draft, view.faucet, journal.principal);
            if (stored) stored.intent = { ...journal };
          }));
        }
        let reply: Awaited<ReturnType<typeof faucetClient.recover>>;
        try {
          reply = await faucetClient.recover(code, { requestId });
        } catch (error) {
          // A definite refusal (a wrong code) changed nothing upstream: clear the journal now,
          // as a refused rotation does, instead of leaving it for the next command to resolve.
          // An unknown outcome keeps it: the faucet may have issued a key.
          if (outcomeUnknown(error)) throw error;
          if (journal !== undefined) {
            await clearIntent(context, view.faucet, journal.principal, base);
          }
          // Audited with or without a journal: a wrong code tried on a profile whose operator
          // key is lost (the case recover exists for) is as much an attempt as any other.
          await audit(context, {
            principal: journal?.principal ?? view.operator ?? "operator",
            action: "recover",
            outcome: "failure",
            ...(old === undefined ? {} : { oldFingerprint: old.fingerprint }),
            requestId,
            errorCode: isRekeyError(error) ? error.code : "INTERNAL",
          });
          throw error;
        }
        killPoint("recover.upstream-replied");
        // Whose key this is: the reply names the operator, so a recovery code of another
        // account (operator B's, pasted in operator A's profile), which makes the faucet replace
        // B's key, is told before anything waits on the network: the new key is the only live
        // one and must be durable first, and it must never be filed as A's. whoami confirms the
        // key while it is being stored, as a rotation's verification does.
        const recoveredId = reply.operatorId;
        const verifying = faucetClient.whoami(reply.apiKey).then(
          (identity) => identity.type === "operator" && identity.id === recoveredId,
          () => false,
        );
        if (expectedId !== undefined && recoveredId !== expectedId) {
          throw await keepOtherAccountsKey(reply, {
            view,
            base,
            journal,
            requestId,
            verifying,
            profileOperatorId: expectedId,
          });
        }
        // The profile's own account. A record with no id in its principal ("operator", from a
        // schema-1 store) keeps its name and learns the id: every profile pointing at it, and
        // its journal, go on with the recovered key (an "operator:N" beside it would leave
        // them the dead one).
        const recordPrincipal =
          view.operator !== undefined && operatorIdOfRecord(view.operator) === undefined
            ? view.operator
            : operatorRecordPrincipal(recoveredId);
        const url = context.baseUrl(view);
        // From here on, the path of a rotation: the new key is stored (retried, with a rescue
        // file if the store refuses it), then the audit entry, then the journal is cleared.
        const stored = await storeIssuedKey(context, view.faucet, OPERATOR, journal, reply, base, {
          recordPrincipal,
          source: "recover",
          requestId,
          oldFingerprint: view.operator === recordPrincipal ? (old?.fingerprint ?? "none") : "none",
          alsoChange: (draft) => {
            const recovered = recordIn(draft, url, recordPrincipal);
            recovered.operatorId = recoveredId;
            const profile = profileIn(draft, profileName, url);
            const pointed =
              profile.operator === undefined
                ? undefined
                : draft.principals[recordIdOf(url, profile.operator)];
            // The profile follows the recovered account when it had none, or only a lost key.
            if (pointed?.key === undefined) profile.operator = recordPrincipal;
          },
        });
        const { record } = stored;
        killPoint("recover.key-stored");
        const verified = await verifying;
        await audit(context, {
          principal: recordPrincipal,
          action: "recover",
          outcome: "success",
          oldFingerprint: record.oldFingerprint,
          newFingerprint: record.newFingerprint,
          cooldownUntil: record.cooldownUntil,
          requestId,
        });
        killPoint("recover.audited");
        const finalRecord = { ...record, verified };
        if (journal !== undefined && journal.principal === recordPrincipal) {
          await finishIntent(context, view.faucet, recordPrincipal, finalRecord, stored.snapshot);
        } else if (verified) {
          await updateStoreFrom(store, stored.snapshot, (draft) => {
            const recovered = writableRecord(draft, url, recordPrincipal);
            if (recovered?.lastRotation?.requestId === requestId)
              recovered.lastRotation.verified = true;
          });
        }
        return {
          ...toResult(
            { principal: OPERATOR, record: finalRecord, apiKey: reply.apiKey, shared: false },
            false,
            false,
          ),
          operatorId: recoveredId,
        };
      });
      // A recovered key reaches the targets too: the old one is dead.
      const deliveries = await recordIdFor(OPERATOR).then(deliverRotation, () => undefined);
      return deliveries === undefined ? result : { ...result, deliveries };
    },
  };
}

/** COOLDOWN_ACTIVE for a recovery asked for inside the operator's withdrawal cooldown. */
function recoveryInCooldownError(until: string, nowMs: number): RekeyError {
  const refusal = cooldownActiveError(OPERATOR, until, nowMs);
  return new RekeyError(
    "COOLDOWN_ACTIVE",
    `The operator is inside a withdrawal cooldown until ${until}: a recovery now would restart the 60-minute block`,
    {
      hint: "Nothing was changed. The stored operator key still serves: wait for the cooldown to end, or recover now deliberately (force).",
      details: refusal.details,
    },
  );
}

/**
 * The account id of the profile's operator: its record principal's ("operator:12"), else the
 * id its record learned, else, for a record migrated from schema 1 without one ("operator"),
 * the faucet's answer for its stored key, asked before the recovery kills that key. Undefined
 * when nothing can tell (no operator, or its key is already dead): the recovered key is then
 * the profile's way back, as for a profile with no operator.
 * @throws RekeyError UPSTREAM_* when the faucet cannot be asked (nothing was changed).
 */
async function profileOperatorId(
  view: ProfileView,
  old: DeepReadonly<StoredKey> | undefined,
  faucetClient: FaucetClient,
): Promise<number | undefined> {
  const fromPrincipal = operatorIdOfRecord(view.operator);
  if (fromPrincipal !== undefined) return fromPrincipal;
  const learned = recordOf(view, OPERATOR)?.operatorId;
  if (learned !== undefined || old?.key === undefined) return learned;
  try {
    const identity = await faucetClient.whoami(openKey(old.key));
    return identity.type === "operator" ? identity.id : identity.operatorId;
  } catch (error) {
    if (isRekeyError(error, "UNAUTHORIZED")) return undefined;
    throw error;
  }
}

/** The operator id of an operator record principal ("operator:12"); undefined when unknown. */
function operatorIdOfRecord(recordPrincipal: string | undefined): number | undefined {
  const id = /^operator:(\d+)$/.exec(recordPrincipal ?? "")?.[1];
  return id === undefined ? undefined : Number(id);
}

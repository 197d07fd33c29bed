import { randomUUID } from "node:crypto";
import { isRekeyError, RekeyError } from "../errors.js";
import { OPERATOR } from "../principal.js";
import { operatorRecordPrincipal, recordIdOf } from "../store/record-ids.js";
import type { RotationIntent } from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import { rotationLockName } from "./context.js";
import {
  profileIn,
  recordIn,
  recordOf,
  storedKeyOf,
  updateStoreFrom,
  writableRecord,
} from "./principal-records.js";
import { cooldownActiveError, secondsUntil } from "./rotation-checks.js";
import {
  audit,
  clearIntent,
  finishIntent,
  outcomeUnknown,
  prepareAudit,
  storeIssuedKey,
  verifyKey,
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
        // a running one it restarts it, so it takes the same deliberate `force`.
        const cooldownUntil = recordOf(view, OPERATOR)?.cooldownUntil;
        if (
          options.force !== true &&
          cooldownUntil !== undefined &&
          secondsUntil(cooldownUntil, clock.now()) > 0
        ) {
          throw recoveryInCooldownError(cooldownUntil, clock.now());
        }
        // Recovery invalidates the operator's key: the store must be able to take the new one,
        // and the audit log its entry.
        await store.checkWritable();
        await prepareAudit(context);
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
        const faucetClient = context.client(view);
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
        const recordPrincipal = operatorRecordPrincipal(reply.operatorId);
        const url = context.baseUrl(view);
        // From here on, the path of a rotation: whoami asks about the new key while it is
        // stored (retried, with a rescue file if the store refuses it), then the audit entry,
        // then the journal is cleared.
        const verifying = verifyKey(faucetClient, OPERATOR, reply.apiKey);
        const stored = await storeIssuedKey(context, view.faucet, OPERATOR, journal, reply, base, {
          recordPrincipal,
          source: "recover",
          requestId,
          oldFingerprint: view.operator === recordPrincipal ? (old?.fingerprint ?? "none") : "none",
          alsoChange: (draft) => {
            const recovered = recordIn(draft, url, recordPrincipal);
            recovered.operatorId = reply.operatorId;
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
        return toResult(
          { principal: OPERATOR, record: finalRecord, apiKey: reply.apiKey, shared: false },
          false,
          false,
        );
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
      hint: "Nothing was changed. If the operator key still works, wait for the cooldown to end; recover now only deliberately (force).",
      details: refusal.details,
    },
  );
}

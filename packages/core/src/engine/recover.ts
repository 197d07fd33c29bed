import { randomUUID } from "node:crypto";
import { RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { cooldownMinutes, OPERATOR } from "../principal.js";
import { operatorRecordPrincipal, recordIdOf } from "../store/record-ids.js";
import { killPoint } from "../testing/kill-points.js";
import { rotationLockName } from "./context.js";
import {
  profileIn,
  recordIn,
  recordOf,
  setKey,
  storedKeyOf,
  updateStore,
  writableRecord,
} from "./principal-records.js";
import { audit, prepareAudit } from "./rotation.js";
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
    baseUrl,
    client,
    context,
    deliverRotation,
    keyProvider,
    withLock,
    profileLockName,
    toResult,
    recordIdFor,
  } = session;
  return {
    async recover(recoveryCode) {
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
        // Recovery invalidates the operator's key: the store must be able to take the new one,
        // and the audit log its entry.
        await store.checkWritable();
        await prepareAudit(context);
        // Journaled like a rotation: the faucet invalidates the old key, so a process killed
        // before the new one is stored leaves an intent that the next run resolves (into a
        // loud KEY_LOST with the way back, the recovery code), never a dead key said nothing of.
        const journal =
          view.operator !== undefined && old !== undefined && !recordOf(view, OPERATOR)?.intent
            ? {
                requestId: randomUUID(),
                principal: view.operator,
                actor: view.operator,
                oldFingerprint: old.fingerprint,
                startedAt: new Date(clock.now()).toISOString(),
                phase: "requested" as const,
                surface,
              }
            : undefined;
        if (journal) {
          await updateStore(store, (draft) => {
            const stored = writableRecord(draft, view.faucet, journal.principal);
            if (stored) stored.intent = { ...journal };
          });
        }
        const reply = await (await client()).recover(code, {});
        killPoint("recover.upstream-replied");
        const recordPrincipal = operatorRecordPrincipal(reply.operatorId);
        const now = new Date(clock.now()).toISOString();
        const record = {
          requestId: "recover",
          oldFingerprint: view.operator === recordPrincipal ? (old?.fingerprint ?? "none") : "none",
          newFingerprint: fingerprint(reply.apiKey),
          rotatedAt: now,
          cooldownUntil:
            reply.cooldownUntil ??
            new Date(clock.now() + cooldownMinutes(OPERATOR) * 60_000).toISOString(),
          verified: false,
          surface,
        };
        const url = await baseUrl();
        await updateStore(
          store,
          (draft) => {
            const stored = recordIn(draft, url, recordPrincipal);
            setKey(stored, {
              key: reply.apiKey,
              fingerprint: record.newFingerprint,
              savedAt: now,
              source: "recover",
            });
            stored.operatorId = reply.operatorId;
            stored.lastRotation = record;
            stored.cooldownUntil = record.cooldownUntil;
            if (journal) {
              // Kept (phase stored) until the audit entry is written; another account's
              // recovery leaves the old record's journal to be resolved on its own.
              const journaled = writableRecord(draft, url, journal.principal);
              if (journaled?.intent?.requestId === journal.requestId) {
                if (journal.principal === recordPrincipal) journaled.intent.phase = "stored";
              }
            }
            const profile = profileIn(draft, profileName, url);
            const pointed =
              profile.operator === undefined
                ? undefined
                : draft.principals[recordIdOf(url, profile.operator)];
            // The profile follows the recovered account when it had none, or only a lost key.
            if (pointed?.key === undefined) profile.operator = recordPrincipal;
          },
          () => keyProvider.invalidate(),
        );
        killPoint("recover.key-stored");
        let verified = false;
        try {
          verified = (await (await client()).whoami(reply.apiKey)).type === "operator";
        } catch {
          verified = false;
        }
        if (verified) {
          await updateStore(store, (draft) => {
            const stored = writableRecord(draft, url, recordPrincipal);
            if (stored?.lastRotation?.requestId === "recover") stored.lastRotation.verified = true;
          });
        }
        await audit(context, {
          principal: recordPrincipal,
          action: "recover",
          outcome: "success",
          oldFingerprint: record.oldFingerprint,
          newFingerprint: record.newFingerprint,
          cooldownUntil: record.cooldownUntil,
          ...(journal === undefined ? {} : { requestId: journal.requestId }),
        });
        killPoint("recover.audited");
        if (journal) {
          await updateStore(store, (draft) => {
            const journaled = writableRecord(draft, url, journal.principal);
            if (
              journaled?.intent?.requestId === journal.requestId &&
              journaled.intent.phase === "stored"
            )
              delete journaled.intent;
          });
        }
        return toResult(
          {
            principal: OPERATOR,
            record: { ...record, verified },
            apiKey: reply.apiKey,
            shared: false,
          },
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

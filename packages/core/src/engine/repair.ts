import { RekeyError } from "../errors.js";
import { OPERATOR, principalLabel } from "../principal.js";
import { recordIdOf } from "../store/record-ids.js";
import { rotationLockName } from "./context.js";
import {
  activePrincipalOf,
  principalOfRecord,
  profileIn,
  recordIn,
  recordOf,
  recordPrincipalOf,
  setKey,
  updateStore,
  writableRecord,
} from "./principal-records.js";
import { ownRescueFile, readRescueFile, removeRescueFile } from "./rescue.js";
import { listRescuedKeys, settleRescueAudit } from "./rescue-audit.js";
import { importAdvice, supersedes } from "./rescued-keys.js";
import { audit, prepareAudit, recordAt } from "./rotation-steps.js";
import type { Session } from "./session.js";
import type { Rekey } from "./types.js";

/** What `doctor --repair` and `rescue import` do: finish journals, acknowledge losses, take keys back. */
export function createRepair(
  session: Session,
): Pick<Rekey, "resolvePending" | "acknowledgeKeyLost" | "importRescue" | "rescuedKeys"> {
  const {
    profileName,
    store,
    readView,
    defaultUrl,
    context,
    resolveLeftovers,
    keyProvider,
    withLock,
  } = session;
  return {
    async resolvePending() {
      // doctor --repair: a torn audit tail is moved aside (and audited) first.
      await prepareAudit(context);
      return resolveLeftovers();
    },

    async rescuedKeys() {
      return listRescuedKeys(context, await readView());
    },

    async acknowledgeKeyLost(principal) {
      const view = await readView();
      const target = principal ?? activePrincipalOf(view) ?? OPERATOR;
      const recordPrincipal = recordPrincipalOf(view, target);
      const lost = recordOf(view, target)?.keyLost;
      if (recordPrincipal === undefined || !lost) {
        throw new RekeyError(
          "NOT_FOUND",
          `No lost key is recorded for the ${principalLabel(target)}`,
          {
            details: { principal: principalLabel(target) },
          },
        );
      }
      return withLock(rotationLockName(recordIdOf(view.faucet, recordPrincipal)), async () => {
        // The loss stays in the audit log; the record goes once its entry is written.
        await prepareAudit(context);
        if (!lost.audited) await resolveLeftovers();
        await audit(context, {
          principal: recordPrincipal,
          action: "acknowledge",
          outcome: "key_lost",
          oldFingerprint: lost.oldFingerprint,
          requestId: lost.requestId,
          errorCode: "KEY_LOST",
        });
        await updateStore(store, (draft) => {
          const record = writableRecord(draft, view.faucet, recordPrincipal);
          if (record?.keyLost?.requestId === lost.requestId) delete record.keyLost;
        });
        return { requestId: lost.requestId, label: principalLabel(target) };
      });
    },

    async importRescue(path) {
      const read = await readRescueFile(path);
      const view = await readView();
      if (read.faucet !== view.faucet) {
        throw new RekeyError(
          "CONFIG_INVALID",
          `The rescue file holds a key for ${read.faucet}, not this profile's faucet ${view.faucet}`,
          { hint: "Import it with the profile of that faucet (--profile)." },
        );
      }
      // The rescue directory is shared by every store of the user: a key another store
      // refused, of a principal this one does not hold, is that store's to take. One that
      // holds the principal takes the key but leaves the file (and any entry it owes) to the
      // store it names, whose journal may still need it.
      const own = ownRescueFile(read, store);
      if (!own && recordAt(view, read.principal) === undefined) {
        throw new RekeyError(
          "CONFIG_INVALID",
          `The rescue file holds a key of ${principalLabel(principalOfRecord(read.principal))} written for the ${read.store?.kind} store at ${read.store?.location}, not this one (${store.kind} at ${store.location}), which does not hold that principal`,
          {
            hint: `Import it with the store it was written for: \`${importAdvice({ path, source: read.source, profile: read.profile }, read.store)}\`${read.store?.kind === "postgres" ? " (with that store's password in place of ***)" : ""}; if that store moved, edit the file's store.location to its new place. Nothing was changed.`,
          },
        );
      }
      const target = principalOfRecord(read.principal);
      await withLock(rotationLockName(recordIdOf(view.faucet, read.principal)), async () => {
        await store.checkWritable();
        await prepareAudit(context);
        // Read again under the lock: it must still be the file checked above.
        const fresh = await readRescueFile(path);
        // Another account's recovery killed before its audit entry: that entry comes first
        // (written by the store the file names only: one log, one entry).
        const file = own
          ? await settleRescueAudit(context, path, fresh, context.lockWaitMs)
          : fresh;
        if (
          file.fingerprint !== read.fingerprint ||
          file.principal !== read.principal ||
          file.faucet !== read.faucet
        ) {
          throw new RekeyError(
            "INVALID_INPUT",
            `The rescue file ${path} changed while it was being imported. Nothing was changed.`,
            { hint: "Check the file, then run the import again." },
          );
        }
        await updateStore(
          store,
          (draft) => {
            const record = recordIn(draft, view.faucet, file.principal);
            if (supersedes(record, file)) {
              throw new RekeyError(
                "INVALID_INPUT",
                `The rescue file holds an older key of ${principalLabel(target)} (${file.fingerprint}, saved ${file.savedAt}) than the store's (${record.fingerprint ?? "?"}, saved ${record.savedAt ?? "?"}): it was left behind after its key was stored, and the principal was rotated since, so its key no longer works. Nothing was changed.`,
                {
                  hint: `Keep using the stored key (rekey status). The file can be deleted: ${path}`,
                  details: { principal: principalLabel(target) },
                },
              );
            }
            setKey(record, {
              key: file.key,
              fingerprint: file.fingerprint,
              savedAt: file.savedAt,
              source: file.source,
            });
            if (file.operatorId !== undefined) record.operatorId = file.operatorId;
            if (file.lastRotation) {
              record.lastRotation = file.lastRotation;
              record.cooldownUntil = file.lastRotation.cooldownUntil;
            }
            // The journaled rotation this key came from is finished by it.
            if (file.requestId !== undefined && record.intent?.requestId === file.requestId)
              delete record.intent;
            const profile = profileIn(draft, profileName, view.profile?.baseUrl ?? defaultUrl());
            // A new profile takes the operator whose key it imports: a registration's, or a
            // recovery's that another profile's operator refused (another account's code).
            if (
              (file.source === "register" || file.source === "recover") &&
              file.principal.startsWith("operator") &&
              profile.operator === undefined
            )
              profile.operator = file.principal;
          },
          () => keyProvider.invalidate(),
        );
        await audit(context, {
          principal: file.principal,
          action: "import",
          outcome: "success",
          newFingerprint: file.fingerprint,
          ...(file.requestId === undefined ? {} : { requestId: file.requestId }),
          ...(file.lastRotation === undefined
            ? {}
            : { cooldownUntil: file.lastRotation.cooldownUntil }),
        });
      });
      // Another store's file stays for that store (its journal may still need it); it no longer
      // shows here, since this store now holds its key.
      if (own) await removeRescueFile(path);
      return { label: principalLabel(target), fingerprint: read.fingerprint };
    },
  };
}

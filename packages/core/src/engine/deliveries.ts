import { basename, dirname } from "node:path";
import {
  type DeliveryJournalContext,
  type DeliveryOutcome,
  type DeliveryStatus,
  deliverRecord,
  deliveryStatusOf,
  finishDeliveries,
} from "../delivery/delivery-journal.js";
import type { DeliveryTarget, DeliveryTargetSpec } from "../delivery/target-schema.js";
import { newDeliveryTarget } from "../delivery/target-spec.js";
import { RekeyError } from "../errors.js";
import type { Principal } from "../principal.js";
import { thawedCopy } from "../store/freeze.js";
import type { CredentialStore, StoreData } from "../store/types.js";
import { updateStore } from "./principal-records.js";

const STORE_FILE = /^(credentials.*\.json|audit\.jsonl.*|master\.key.*|.*\.lock|\..*\.tmp)$/;

/**
 * A target must not be rekey's own store (a file target there corrupts it and puts a key in the
 * audit log), and two principals must not deliver to one `.env` variable (each would overwrite
 * the other's key while both show as current).
 * @throws RekeyError INVALID_INPUT naming the clash.
 */
function refuseSharedPlace(
  target: DeliveryTarget,
  store: CredentialStore,
  data: StoreData,
  recordId: string,
): void {
  // A file store's location is its credentials.json: its directory holds the audit log too.
  const ownDir = store.kind === "file" ? dirname(store.location) : undefined;
  // Its own files sit directly in it: credentials (and their backups), the audit log (and
  // torn tails moved aside), the master key, locks and temp files.
  const inOwnStore = (path: string) =>
    ownDir !== undefined &&
    (path === ownDir || (dirname(path) === ownDir && STORE_FILE.test(basename(path))));
  const ownFile =
    (target.kind === "dotenv" || target.kind === "lightning-wallet") && inOwnStore(target.path);
  const location = target.kind === "store" ? target.location.replace(/\/+$/, "") : undefined;
  const sameStore = location !== undefined && (location === ownDir || location === store.location);
  if (ownFile || sameStore) {
    const place = target.kind === "store" ? target.location : (target as { path: string }).path;
    throw new RekeyError(
      "INVALID_INPUT",
      `${place} is rekey's own store, not a consumer of the key`,
      {
        hint: "Deliver to the file or store the consumer reads, outside rekey's store directory.",
      },
    );
  }
  if (target.kind !== "dotenv") return;
  for (const [otherId, other] of Object.entries(data.principals)) {
    if (otherId === recordId) continue;
    const clash = other.deliveries?.find(
      (existing) =>
        existing.kind === "dotenv" &&
        existing.path === target.path &&
        existing.variable === target.variable,
    );
    if (clash) {
      throw new RekeyError(
        "INVALID_INPUT",
        `${target.variable} in ${target.path} already receives the key of ${other.principal} (${clash.id})`,
        { hint: "Use another variable (--var) or file for this principal." },
      );
    }
  }
}

/** The delivery operations of a `Rekey`, over the journal in `delivery/`. */
export interface DeliveryOperations {
  /** A principal's targets and where each stands (current, stale, failing). */
  listDeliveryTargets(
    principal?: Principal,
  ): Promise<{ principal: string; targets: DeliveryStatus[] }>;
  /**
   * Adds a target to a principal's record and delivers the current key to it at once.
   * @throws RekeyError INVALID_INPUT (shape, duplicate), CONFIG_INVALID (URL, password),
   *   NOT_FOUND (no record for the principal)
   */
  addDeliveryTarget(
    spec: DeliveryTargetSpec,
    principal?: Principal,
  ): Promise<{ principal: string; target: string; outcome: DeliveryOutcome | undefined }>;
  /** @throws RekeyError NOT_FOUND for an unknown id. */
  removeDeliveryTarget(
    id: string,
    principal?: Principal,
  ): Promise<{ principal: string; target: string }>;
  /**
   * Delivers now: to the targets that do not hold the key (`retry`), or with `force` to each
   * (or the `only` one) whether or not it does (`test`), ignoring back-off.
   */
  deliver(options?: {
    principal?: Principal;
    only?: string;
    force?: boolean;
  }): Promise<DeliveryOutcome[]>;
  /** Finishes the deliveries that earlier processes left pending or due (every record). */
  finishDeliveries(options?: { leftoversOnly?: boolean }): Promise<DeliveryOutcome[]>;
  /** Every record of the store that has targets, with where each target stands (doctor). */
  deliveryReport(): Promise<{ principal: string; faucet: string; targets: DeliveryStatus[] }[]>;
}

/**
 * Builds the operations. `recordIdFor` resolves a principal (default: the profile's) to its
 * record id, throwing NOT_FOUND when the store holds no record of it.
 */
export function createDeliveryOperations(
  journal: DeliveryJournalContext,
  recordIdFor: (principal?: Principal) => Promise<string>,
): DeliveryOperations {
  const principalOf = (recordId: string) => recordId.slice(recordId.lastIndexOf("#") + 1);

  async function recordOf(recordId: string) {
    const record = (await journal.store.read()).data.principals[recordId];
    if (!record) {
      throw new RekeyError("NOT_FOUND", `No record of ${principalOf(recordId)} in the store`, {
        hint: "Store its key first (`rekey login`, `rekey import lightning-wallet`).",
      });
    }
    return record;
  }

  async function removeDeliveryTarget(id: string, principal?: Principal) {
    const recordId = await recordIdFor(principal);
    await updateStore(journal.store, (draft) => {
      const frozen = draft.principals[recordId];
      if (!frozen?.deliveries?.some((target) => target.id === id)) {
        throw new RekeyError("NOT_FOUND", `No delivery target ${id} for ${principalOf(recordId)}`, {
          hint: "List them with `rekey deliver list`.",
        });
      }
      const record = thawedCopy(frozen);
      record.deliveries = record.deliveries?.filter((target) => target.id !== id);
      if (record.deliveries?.length === 0) delete record.deliveries;
      draft.principals[recordId] = record;
    });
    return { principal: principalOf(recordId), target: id };
  }

  return {
    async listDeliveryTargets(principal) {
      const recordId = await recordIdFor(principal);
      const record = await recordOf(recordId);
      return { principal: record.principal, targets: deliveryStatusOf(record) };
    },

    async addDeliveryTarget(spec, principal) {
      const recordId = await recordIdFor(principal);
      await recordOf(recordId);
      const id = await updateStore(journal.store, (draft) => {
        const frozen = draft.principals[recordId];
        if (!frozen)
          throw new RekeyError("NOT_FOUND", `No record of ${principalOf(recordId)} in the store`);
        const record = thawedCopy(frozen);
        const target = newDeliveryTarget(spec, (record.deliveries ?? []) as DeliveryTarget[]);
        refuseSharedPlace(target, journal.store, draft, recordId);
        record.deliveries = [...(record.deliveries ?? []), target];
        draft.principals[recordId] = record;
        return target.id;
      });
      const [outcome] = await deliverRecord(journal, recordId, { only: id, force: true });
      // A target that cannot work as configured (a missing file, a link, an open mode, a bad
      // command) is not kept: the user fixes it and adds it again. A transient failure (a
      // receiver down) keeps it, failing, to be retried.
      const error = outcome?.status === "failed" ? outcome.error : undefined;
      if (error && (error.code === "CONFIG_INVALID" || error.code === "INVALID_INPUT")) {
        await removeDeliveryTarget(id, principal);
        throw new RekeyError(error.code, error.message, {
          hint: "Fix it, then add the target again; it was not kept.",
        });
      }
      return { principal: principalOf(recordId), target: id, outcome };
    },

    removeDeliveryTarget,

    async deliver(options = {}) {
      const recordId = await recordIdFor(options.principal);
      return deliverRecord(journal, recordId, {
        only: options.only,
        force: options.force,
        retry: true,
      });
    },

    finishDeliveries: (options) => finishDeliveries(journal, options),

    async deliveryReport() {
      const { data } = await journal.store.read();
      return Object.values(data.principals)
        .filter((record) => (record.deliveries?.length ?? 0) > 0)
        .map((record) => ({
          principal: record.principal,
          faucet: record.faucet,
          targets: deliveryStatusOf(record),
        }));
    },
  };
}

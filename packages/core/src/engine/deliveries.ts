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
import { updateStore } from "./principal-records.js";

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
      const record = structuredClone(frozen);
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
        const record = structuredClone(frozen);
        const target = newDeliveryTarget(spec, (record.deliveries ?? []) as DeliveryTarget[]);
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

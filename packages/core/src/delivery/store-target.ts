import {
  principalOfRecord,
  profileIn,
  recordIn,
  setKey,
  updateStore,
} from "../engine/principal-records.js";
import { RekeyError } from "../errors.js";
import { faucetIdOf } from "../store/record-ids.js";
import { storeSpecHasPassword } from "../store/store-spec.js";
import type { DeliveryEnvironment, DeliveryPayload } from "./delivery-payload.js";

/**
 * The `store` target: another rekey store (a directory, or `postgres://…` with the password in
 * PGPASSWORD or ~/.pgpass), so an agent's own host holds only that agent's key and reads it
 * with its own rekey. The principal's record there gets the key, its rotation and cooldown; a
 * store that has no profile on the faucet gets `default`, acting as the principal.
 */

/** @throws RekeyError CONFIG_INVALID for a location with a password in it. */
export function assertStoreLocation(location: string): void {
  // A relative directory would mean wherever the process that delivers happens to run.
  if (!location.includes("://") && !location.startsWith("/")) {
    throw new RekeyError(
      "INVALID_INPUT",
      "A store target is an absolute directory or a postgres:// URL",
      {
        hint: location.startsWith("file:")
          ? "Give the directory itself, without file: (the CLI's `rekey deliver add store file:DIR` drops it for you)."
          : "`rekey deliver add store DIR` makes a relative DIR absolute for you.",
      },
    );
  }
  if (storeSpecHasPassword(location)) {
    throw new RekeyError("CONFIG_INVALID", "A store target must not hold a database password", {
      hint: "Drop the password from the URL; the delivering rekey reads it from PGPASSWORD or ~/.pgpass.",
    });
  }
}

/**
 * Writes the key into the other store, unless that store already holds a newer rotation of the
 * principal (a target never goes back to an older key).
 * @throws RekeyError CONFIG_INVALID (no way to open stores here, a password in the location);
 *   whatever the other store throws (STORE_UNAVAILABLE...).
 */
export async function deliverToStore(
  location: string,
  payload: DeliveryPayload,
  environment: DeliveryEnvironment,
): Promise<void> {
  assertStoreLocation(location);
  if (environment.openStore === undefined) {
    throw new RekeyError("CONFIG_INVALID", "This program cannot open other stores for delivery");
  }
  const store = await environment.openStore(location);
  try {
    const now = new Date(environment.clock.now()).toISOString();
    await updateStore(store, (draft) => {
      const record = recordIn(draft, payload.faucet, payload.principal);
      const theirs = record.lastRotation?.rotatedAt;
      const ours = payload.rotation?.rotatedAt;
      if (theirs !== undefined && (ours === undefined || theirs > ours)) return;
      if (record.fingerprint === payload.fingerprint) return;
      setKey(record, {
        key: payload.key,
        fingerprint: payload.fingerprint,
        savedAt: now,
        source: "rotate",
      });
      if (payload.rotation) record.lastRotation = { ...payload.rotation };
      if (payload.cooldownUntil) record.cooldownUntil = payload.cooldownUntil;
      if (payload.name !== undefined) record.name ??= payload.name;
      if (payload.operatorId !== undefined) record.operatorId ??= payload.operatorId;
      const hasProfile = Object.values(draft.profiles).some(
        (profile) => faucetIdOf(profile.baseUrl) === payload.faucet,
      );
      if (!hasProfile && draft.profiles.default === undefined) {
        const profile = profileIn(draft, "default", payload.faucet);
        if (principalOfRecord(payload.principal).kind === "agent")
          profile.actsAs = payload.principal;
        else profile.operator = payload.principal;
        draft.currentProfile ??= "default";
      }
    });
  } finally {
    await store.close();
  }
}

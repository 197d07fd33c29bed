import type { DeepReadonly, PrincipalRecord, StoreData } from "../store/types.js";

/**
 * The keys a store knows, by fingerprint only: which a principal held, and whose the others
 * are. A target that holds a key in a slot (the lightning-wallet file's `operator` entry) uses
 * them to tell this principal's old key, safe to replace, from another account's live one.
 */

/** Every fingerprint the store knows `record` held: current, replaced, alternates, delivered. */
export function heldFingerprintsOf(record: DeepReadonly<PrincipalRecord>): string[] {
  const held = new Set<string>();
  if (record.fingerprint !== undefined) held.add(record.fingerprint);
  if (record.lastRotation) {
    held.add(record.lastRotation.oldFingerprint);
    held.add(record.lastRotation.newFingerprint);
  }
  for (const alternate of record.alternates ?? []) held.add(alternate.fingerprint);
  for (const target of record.deliveries ?? []) {
    if (target.state?.deliveredFingerprint) held.add(target.state.deliveredFingerprint);
  }
  return [...held];
}

/** The other records' keys: fingerprint → record principal ("operator:2"). */
export function keyOwnersBeside(
  data: DeepReadonly<StoreData>,
  recordId: string,
): Record<string, string> {
  const owners: Record<string, string> = {};
  for (const [id, other] of Object.entries(data.principals)) {
    if (id === recordId) continue;
    for (const fp of heldFingerprintsOf(other)) owners[fp] ??= other.principal;
  }
  return owners;
}

import { RekeyError } from "../../errors.js";

/**
 * A key as a principal record holds it: a string in clear (a key this process just stored, a
 * store that keeps keys in clear such as the memory store), or a {@link SealedKey} (read back
 * from a store that seals keys at rest, not opened yet). Read one with {@link openKey}: the
 * type is not a `string`, so a reader that forgets to open it does not compile.
 */
export type RecordKey = string | SealedKey;

/** What opens a sealed key: the record sealer of the store it was read from. */
export interface SealedKeyOpener {
  /** The store the ciphertext is bound to. */
  readonly storeId: string;
  /**
   * The key in clear, remembered per ciphertext.
   * @throws RekeyError STORE_LOCKED / STORE_CORRUPT.
   */
  openSealedKey(key: SealedKeyData): string;
}

/**
 * A key left sealed in a snapshot: its ciphertext (`rk1:…`, see `sealed-secret.ts`), the store
 * and the place (record id and field) it is bound to, and, privately, what opens it. A read
 * makes one of these per key instead of decrypting it, so a `status` of a thousand agents
 * decrypts nothing; {@link openKey} decrypts where a key is used.
 *
 * Plain data to everything that walks a record: frozen (snapshots share it), and its fields
 * are the ones above, never the key. `JSON.stringify` shows the sealed form; `structuredClone`
 * (snapshots are copied that way before a change) gives a plain object of the same fields,
 * which the store it came from writes back unchanged, or opens itself when it moved to another
 * place. Only such a copy cannot be opened by {@link openKey}: `thawedCopy` (store/freeze.ts)
 * copies a record and keeps its sealed keys as they are.
 */
export class SealedKey {
  /** The ciphertext, as stored. */
  readonly sealed: string;
  /** The id of the store it is bound to. */
  readonly store: string;
  /** Where in that store it sits ({@link placeOf}): bound into the ciphertext too. */
  readonly place: string;
  readonly #opener: SealedKeyOpener;

  constructor(sealed: string, opener: SealedKeyOpener, place: string) {
    this.sealed = sealed;
    this.store = opener.storeId;
    this.place = place;
    this.#opener = opener;
    Object.freeze(this);
  }

  /**
   * The key in clear (decrypted once per ciphertext and sealer).
   * @throws RekeyError STORE_LOCKED / STORE_CORRUPT (changed, or moved from another record or
   *   store).
   */
  open(): string {
    return this.#opener.openSealedKey(this);
  }
}

/** The fields of a {@link SealedKey}, as a copy (`structuredClone`) keeps them. */
export interface SealedKeyData {
  readonly sealed: string;
  readonly store: string;
  readonly place: string;
}

/**
 * The place a key's ciphertext is bound to: `<record id>#key` for the record's key (`slot` -1),
 * `<record id>#alternate:<slot>` for an alternate's.
 */
export function placeOf(recordId: string, slot: number): string {
  return slot < 0 ? `${recordId}#key` : `${recordId}#alternate:${slot}`;
}

/** The record id of a {@link placeOf} place (record ids hold `#` too: the last one ends it). */
export function recordIdOfPlace(place: string): string {
  return place.slice(0, place.lastIndexOf("#"));
}

/**
 * The key in clear: a sealed one is opened (once per ciphertext), a clear one returned as it is.
 * The one way the engine, deliveries, the key provider and `doctor` read a record's key.
 *
 * @throws RekeyError STORE_LOCKED (sealed under a master key no longer given);
 *   STORE_CORRUPT (the ciphertext was changed, or moved from another record or store);
 *   INTERNAL (a sealed key copied with `structuredClone`: copy records with `thawedCopy`).
 */
export function openKey(key: RecordKey): string {
  if (typeof key === "string") return key;
  if (key instanceof SealedKey) return key.open();
  throw new RekeyError(
    "INTERNAL",
    `A sealed key of ${String((key as Partial<SealedKeyData>).place).slice(0, 200)} was copied without what opens it (structuredClone)`,
    { hint: "Copy snapshot records with thawedCopy, or read the key from the snapshot itself." },
  );
}

/**
 * True when `value` is a key left sealed by a read, or a copy of one (`structuredClone`).
 * Throws nothing.
 */
export function isSealedKey(value: unknown): value is SealedKey {
  if (value instanceof SealedKey) return true;
  if (typeof value !== "object" || value === null) return false;
  const data = value as Partial<SealedKeyData>;
  return (
    typeof data.sealed === "string" &&
    typeof data.store === "string" &&
    typeof data.place === "string"
  );
}

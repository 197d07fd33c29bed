import { randomUUID } from "node:crypto";
import { isRekeyError, RekeyError } from "../../errors.js";
import type { MasterKey } from "./master-key.js";
import {
  isSealedKey,
  openKey,
  placeOf,
  type RecordKey,
  recordIdOfPlace,
  SealedKey,
  type SealedKeyData,
  type SealedKeyOpener,
} from "./sealed-key.js";
import { isSealed, openSecret, sealedKeyId, sealSecret } from "./sealed-secret.js";

/**
 * Turns principal records into their stored form and back: every key (the current one and
 * each alternate) sealed, bound to its store and its place in the record. Everything else in
 * a record stays readable (fingerprints, cooldowns, the journal), so `status` and `doctor`
 * show what they show without a key, and a locked store still says what it holds.
 *
 * Sealing is the expensive part of a write and opening of a read, so both are remembered:
 * a record object sealed once is not sealed again (records of a snapshot are frozen), and a
 * ciphertext opened once is not opened again. And a read opens no key at all
 * ({@link leaveSealed}): a record holds its key as a `SealedKey`, opened by `openKey` where a
 * key is used (a rotation, a delivery, the key provider), not for a `status` that shows
 * fingerprints. A cold `status` of a thousand agents opened a thousand keys, twice the time of
 * the same store in clear; a getter per record that opened on first read still cost half as
 * much again (an accessor defined per object takes it out of V8's fast shapes).
 */

/** The master keys a store accepts: `current` seals; every one of `accepted` opens. */
export interface KeyRing {
  readonly current: MasterKey;
  /** `current` first, then keys still accepted (the old key while re-keying). */
  readonly accepted: readonly MasterKey[];
}

/** A new store id: binds ciphertexts to one store. Throws nothing. */
export function newStoreId(): string {
  return randomUUID();
}

type RawRecord = Record<string, unknown>;

// Cap on remembered openings: far above any real store's record count.
const MAX_REMEMBERED_OPENINGS = 100_000;

/** Where `rk1:` + a 16-hex-digit key id ends, and the colon there. */
const KEY_ID_END = 20;
const COLON = 0x3a;

/** One store's sealing of records, under one key ring. */
export class RecordSealer implements SealedKeyOpener {
  private readonly opened = new Map<string, string>();
  private readonly sealedRecords = new WeakMap<object, RawRecord>();
  private readonly sealedTexts = new WeakMap<object, { id: string; text: string }>();
  private readonly sealedEntries = new WeakMap<object, { id: string; bytes: Buffer }>();
  /** The last ciphertext sealed at each place, and the secret in it. */
  private readonly lastSealed = new Map<string, { secret: string; sealed: string }>();

  constructor(
    readonly storeId: string,
    readonly keyring: KeyRing,
    /** Names the store in errors (a path, a redacted URL). */
    private readonly source: string,
  ) {
    this.acceptedIds = new Set(keyring.accepted.map((key) => key.id));
    this.currentPrefix = `rk1:${keyring.current.id}:`;
  }

  private readonly acceptedIds: ReadonlySet<string>;
  /** How every ciphertext sealed under the current master key starts. */
  private readonly currentPrefix: string;

  /**
   * The record as stored, its keys sealed under the current master key. A frozen record
   * (from a snapshot) is sealed once; a key already sealed under the current key by an
   * earlier read is kept as it was. Throws nothing.
   */
  sealRecord(id: string, record: object): RawRecord {
    const known = this.sealedRecords.get(record);
    if (known !== undefined) return known;
    const plain = record as RawRecord;
    const sealed: RawRecord = { ...plain };
    if (plain.key !== undefined) sealed.key = this.sealedText(plain.key as RecordKey, id, -1);
    if (Array.isArray(plain.alternates)) {
      sealed.alternates = plain.alternates.map((alternate: RawRecord, index) =>
        alternate.key === undefined
          ? alternate
          : { ...alternate, key: this.sealedText(alternate.key as RecordKey, id, index) },
      );
    }
    if (Object.isFrozen(record)) this.sealedRecords.set(record, sealed);
    return sealed;
  }

  /**
   * The JSON text of the record as stored: {@link sealRecord}, stringified once per frozen
   * record (a write of one record among a thousand seals and stringifies one). Throws nothing.
   */
  sealedJson(id: string, record: object): string {
    const known = this.sealedTexts.get(record);
    if (known?.id === id) return known.text;
    const text = JSON.stringify(this.sealRecord(id, record));
    if (Object.isFrozen(record)) this.sealedTexts.set(record, { id, text });
    return text;
  }

  /**
   * The UTF-8 bytes of `"id":<sealedJson>`, the record's entry in a store file, remembered per
   * frozen record like {@link sealedJson}. Throws nothing.
   */
  sealedEntryBytes(id: string, record: object): Buffer {
    const known = this.sealedEntries.get(record);
    if (known?.id === id) return known.bytes;
    const bytes = Buffer.from(`${JSON.stringify(id)}:${this.sealedJson(id, record)}`, "utf8");
    if (Object.isFrozen(record)) this.sealedEntries.set(record, { id, bytes });
    return bytes;
  }

  /**
   * The ciphertext of `key` at its place in record `id`: a key read sealed from this store at
   * this very place, under the current master key, is written back as it was read (no
   * encryption, the same bytes); any other is sealed (opened first when it was sealed for
   * another place, store or master key). Throws as {@link openKey} for such a key.
   */
  private sealedText(key: RecordKey, id: string, slot: number): string {
    const place = placeOf(id, slot);
    if (typeof key === "string") return this.seal(key, place);
    if (
      key.store === this.storeId &&
      key.place === place &&
      key.sealed.startsWith(this.currentPrefix)
    ) {
      return key.sealed;
    }
    return this.seal(this.clearKeyOf(key), place);
  }

  /**
   * The record with its keys opened. A key in clear (a store being encrypted row by row) is
   * returned as it is; {@link countClear} finds those.
   *
   * @throws RekeyError STORE_LOCKED (sealed under a master key not given);
   *   STORE_CORRUPT (a ciphertext changed, or moved from another record or store).
   */
  openRecord(id: string, raw: unknown): unknown {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
    const stored = raw as RawRecord;
    const opened: RawRecord = { ...stored };
    if (typeof stored.key === "string") opened.key = this.open(stored.key, id, `${id}#key`);
    if (Array.isArray(stored.alternates)) {
      opened.alternates = stored.alternates.map((alternate: unknown, index) => {
        if (typeof alternate !== "object" || alternate === null) return alternate;
        const entry = alternate as RawRecord;
        return typeof entry.key === "string"
          ? { ...entry, key: this.open(entry.key, id, `${id}#alternate:${index}`) }
          : entry;
      });
    }
    return opened;
  }

  /**
   * A checked stored record with each sealed key replaced, where it stands, by a
   * {@link SealedKey}: data that opens on {@link openKey}, so a read decrypts nothing. What needs
   * no decryption is checked now, so a locked store is still refused on read: each sealed key's
   * form, and that the master key it names was given. `checked` must be the caller's own (a
   * parse result nobody else holds): it is changed in place, which costs a thousand-record read
   * far less than copying each record. Returns it.
   *
   * `stored`, the record as it was read (before the schema check), is remembered as its stored
   * form while every key in it is sealed under the current master key: written back unchanged,
   * the record keeps its bytes (field order and ciphertexts) and costs no encryption.
   *
   * @throws RekeyError STORE_LOCKED (a key sealed under a master key not given);
   *   STORE_CORRUPT (a sealed key that is not one). Opening a key later throws STORE_CORRUPT
   *   when it was changed, or moved from another record or store.
   */
  leaveSealed(id: string, checked: RawRecord, stored?: RawRecord): RawRecord {
    let current = true;
    const key = checked.key;
    if (typeof key === "string") {
      if (isSealed(key)) checked.key = this.sealedKey(key, id, -1);
      current = key.startsWith(this.currentPrefix);
    }
    const alternates = checked.alternates;
    if (Array.isArray(alternates)) {
      for (let index = 0; index < alternates.length; index += 1) {
        const entry = alternates[index] as unknown;
        if (typeof entry !== "object" || entry === null) continue;
        const alternate = entry as RawRecord;
        if (typeof alternate.key !== "string") continue;
        current &&= alternate.key.startsWith(this.currentPrefix);
        if (isSealed(alternate.key)) alternate.key = this.sealedKey(alternate.key, id, index);
      }
    }
    if (stored !== undefined && current) this.sealedRecords.set(checked, stored);
    return checked;
  }

  /** A sealed key of record `id`, checked as far as it can be without decrypting it. */
  private sealedKey(sealed: string, id: string, slot: number): SealedKey {
    // `rk1:<16 hex>:…`: the key id is read by position (a regex per key is measurable here);
    // the rest of the form is checked where the key is opened.
    const keyId = sealed.charCodeAt(KEY_ID_END) === COLON ? sealed.slice(4, KEY_ID_END) : "";
    if (!this.acceptedIds.has(keyId)) {
      throw sealedKeyId(sealed) === undefined
        ? this.notOpening(id, "malformed")
        : this.locked(id, keyId);
    }
    return new SealedKey(sealed, this, placeOf(id, slot));
  }

  /**
   * The key in clear of a key this sealer left sealed ({@link leaveSealed}), opened once per
   * ciphertext.
   * @throws RekeyError STORE_LOCKED / STORE_CORRUPT, as {@link openRecord}.
   */
  openSealedKey(key: SealedKeyData): string {
    return this.open(key.sealed, recordIdOfPlace(key.place), key.place);
  }

  /**
   * `key` in clear: a sealed key is opened by what read it, or (a copy made by
   * `structuredClone`) by this sealer when it is of this store.
   * @throws RekeyError as {@link openKey}.
   */
  clearKeyOf(key: RecordKey): string {
    if (typeof key === "string" || key instanceof SealedKey) return openKey(key);
    const copy: SealedKeyData = key;
    return copy.store === this.storeId ? this.openSealedKey(copy) : openKey(key);
  }

  /** True when a stored record holds a key in clear or under another key than the current. */
  needsResealing(stored: RawRecord): boolean {
    const prefix = this.currentPrefix;
    const keys = [
      stored.key,
      ...(Array.isArray(stored.alternates)
        ? stored.alternates.map((alternate: RawRecord) => alternate?.key)
        : []),
    ];
    return keys.some((key) => typeof key === "string" && !key.startsWith(prefix));
  }

  private seal(secret: string, place: string): string {
    // The same key at the same place, sealed by this sealer before, is written as the same
    // ciphertext: a rotation writes its new key, then clears its journal in a copy of the
    // record that holds the key in clear, and sealing it again cost a second AES-GCM (and a
    // second ciphertext of the same secret) for nothing. The bytes are those already written.
    const last = this.lastSealed.get(place);
    if (last !== undefined && last.secret === secret) return last.sealed;
    const sealed = sealSecret(secret, this.keyring.current, this.storeId, place);
    this.rememberOpening(`${place}\0${sealed}`, secret);
    if (this.lastSealed.size >= MAX_REMEMBERED_OPENINGS) this.lastSealed.clear();
    this.lastSealed.set(place, { secret, sealed });
    return sealed;
  }

  private open(value: string, id: string, place: string): string {
    if (!isSealed(value)) return value;
    const cacheKey = `${place}\0${value}`;
    const known = this.opened.get(cacheKey);
    if (known !== undefined) return known;
    const result = openSecret(value, this.keyring.accepted, this.storeId, place);
    if (result.ok) {
      this.rememberOpening(cacheKey, result.secret);
      return result.secret;
    }
    if (result.failure === "unknown-key") throw this.locked(id, result.keyId);
    throw this.notOpening(id, result.failure);
  }

  private locked(id: string, keyId: string | undefined): RekeyError {
    const given = this.keyring.accepted.map((key) => `${key.id} from ${key.source}`).join(", ");
    return new RekeyError(
      "STORE_LOCKED",
      `${this.source} is encrypted with master key ${keyId ?? "?"} (record ${id}); the master key given is ${given}`,
      {
        hint: "Give the master key this store was encrypted with (REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD, or the store's master.key file). Nothing was changed.",
        details: { keyId },
      },
    );
  }

  private notOpening(id: string, failure: "malformed" | "not-authentic"): RekeyError {
    return new RekeyError(
      "STORE_CORRUPT",
      `${this.source}: the sealed key of record ${id} does not decrypt (${failure === "malformed" ? "malformed" : "changed, or moved from another record or store"})`,
      {
        hint: "Restore the store from a backup; rekey will not read it as empty or overwrite it.",
      },
    );
  }

  private rememberOpening(cacheKey: string, secret: string): void {
    if (this.opened.size >= MAX_REMEMBERED_OPENINGS) this.opened.clear();
    this.opened.set(cacheKey, secret);
  }
}

/**
 * Opens every key of `principals` (records of a snapshot, keys left sealed by the read): what
 * `doctor` runs, since a read no longer opens them. Returns one problem per record whose key
 * does not open (changed, swapped, from another store), key-free.
 *
 * @throws RekeyError STORE_LOCKED (it stops there: no key of the store opens).
 */
export function keysThatDoNotOpen(principals: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  for (const record of Object.values(principals)) {
    if (typeof record !== "object" || record === null) continue;
    const stored = record as RawRecord;
    try {
      if (stored.key instanceof SealedKey) openKey(stored.key);
      if (Array.isArray(stored.alternates)) {
        for (const alternate of stored.alternates as RawRecord[]) {
          if (alternate?.key instanceof SealedKey) openKey(alternate.key);
        }
      }
    } catch (error) {
      if (!isRekeyError(error) || error.code !== "STORE_CORRUPT") throw error;
      problems.push(error.message);
    }
  }
  return problems;
}

/** How many keys of stored records are in clear. Throws nothing. */
export function countClearKeys(records: Iterable<unknown>): number {
  let clear = 0;
  for (const record of records) {
    if (typeof record !== "object" || record === null) continue;
    const stored = record as RawRecord;
    if (typeof stored.key === "string" && !isSealed(stored.key)) clear += 1;
    if (Array.isArray(stored.alternates)) {
      for (const alternate of stored.alternates as RawRecord[]) {
        if (typeof alternate?.key === "string" && !isSealed(alternate.key)) clear += 1;
      }
    }
  }
  return clear;
}

/**
 * How many sealed keys of stored records name a master key other than `keyId`: keys that a
 * previous key (still accepted) sealed, which the next write seals again under `keyId`.
 * Throws nothing.
 */
export function countKeysSealedUnderOthers(records: Iterable<unknown>, keyId: string): number {
  const current = `rk1:${keyId}:`;
  const other = (key: unknown) =>
    typeof key === "string" && isSealed(key) && !key.startsWith(current);
  let count = 0;
  for (const record of records) {
    if (typeof record !== "object" || record === null) continue;
    const stored = record as RawRecord;
    if (other(stored.key)) count += 1;
    if (Array.isArray(stored.alternates)) {
      for (const alternate of stored.alternates as RawRecord[])
        if (other(alternate?.key)) count += 1;
    }
  }
  return count;
}

/** True when any of the stored records holds a sealed key. Throws nothing. */
export function holdsSealedKeys(records: Iterable<unknown>): boolean {
  for (const record of records) {
    if (typeof record !== "object" || record === null) continue;
    const stored = record as RawRecord;
    if (typeof stored.key === "string" && isSealed(stored.key)) return true;
    if (Array.isArray(stored.alternates)) {
      for (const alternate of stored.alternates as RawRecord[]) {
        if (typeof alternate?.key === "string" && isSealed(alternate.key)) return true;
      }
    }
  }
  return false;
}

/**
 * A sealer that writes keys in clear: only the baseline of the encryption benchmark
 * (`bench/src/encryption.bench.mjs`) uses it, through the file store's `sealKeys: false`.
 */
export class ClearSealer extends RecordSealer {
  override sealRecord(_id: string, record: object): RawRecord {
    const plain = record as RawRecord;
    const alternates = Array.isArray(plain.alternates) ? (plain.alternates as RawRecord[]) : [];
    if (!isSealedKey(plain.key) && !alternates.some((entry) => isSealedKey(entry?.key))) {
      return plain;
    }
    // Keys this handle read sealed (before it was asked to write in clear): opened.
    return {
      ...plain,
      ...(plain.key === undefined ? {} : { key: this.clearKeyOf(plain.key as RecordKey) }),
      ...(Array.isArray(plain.alternates)
        ? {
            alternates: alternates.map((entry) =>
              entry?.key === undefined
                ? entry
                : { ...entry, key: this.clearKeyOf(entry.key as RecordKey) },
            ),
          }
        : {}),
    };
  }
}

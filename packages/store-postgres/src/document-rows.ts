import { type DeepReadonly, RekeyError, type StoreData } from "@rekey/core";
import {
  canonicalJson,
  deepFreeze,
  describeIssues,
  IDEMPOTENCY_SLOT_PATTERN,
  isFiledUnderOwnId,
  migrateStoreData,
  principalRecordSchema,
  type RecordKey,
  type RecordSealer,
  storedIdempotencyRecordSchema,
} from "@rekey/core/store-kit";

/**
 * Core's store document as rows: one per principal record, one per idempotency record, and
 * one for the rest (schema version and profiles). Reads assemble the document, from the rows
 * changed since the snapshot this handle already holds; writes send only the rows that
 * differ from the snapshot the caller read, each by compare-and-set on its version.
 */

/** The version of each row a snapshot was assembled from. */
export interface RowVersions {
  readonly metaVersion: number;
  readonly principals: ReadonlyMap<string, number>;
  readonly idempotency: ReadonlyMap<string, number>;
}

/** A snapshot with the row versions it came from. */
export interface RowSnapshot {
  readonly version: number;
  readonly data: DeepReadonly<StoreData>;
  readonly rows: RowVersions;
}

/** One row to write: `baseVersion` undefined inserts it, `data` null deletes it. */
export interface RowChange {
  readonly id: string;
  readonly baseVersion: number | undefined;
  readonly data: string | null;
}

export interface DocumentChanges {
  /** The meta row's new data, when profiles or the schema version changed. */
  readonly meta: string | undefined;
  readonly principals: RowChange[];
  readonly idempotency: RowChange[];
}

/** One row of the read query. */
export interface ReadRow {
  version: string;
  meta_version: string;
  purged_below: string;
  meta: unknown;
  principals: [string, number, unknown][] | null;
  idempotency: [string, number, unknown][] | null;
}

/** The meta row's part of a document. */
export function metaOf(data: DeepReadonly<StoreData>): Record<string, unknown> {
  return {
    schemaVersion: data.schemaVersion,
    profiles: data.profiles,
    ...(data.currentProfile === undefined ? {} : { currentProfile: data.currentProfile }),
  };
}

/**
 * Assembles a snapshot from a read row: from `previous` plus the rows changed since it, or
 * from every row when there is no previous snapshot (or tombstones it needs were purged).
 * Only rows read are validated.
 * @throws RekeyError STORE_CORRUPT naming the row that does not hold what it should.
 */
export function assembleSnapshot(
  row: ReadRow,
  previous: RowSnapshot | undefined,
  source: string,
  sealer: RecordSealer,
): RowSnapshot {
  const version = Number(row.version);
  if (previous !== undefined && version === previous.version) return previous;
  const incremental =
    previous !== undefined &&
    previous.version >= Number(row.purged_below) &&
    row.principals !== null;
  // The meta row is small: it is checked whole, with core's migration (a newer schema
  // version is refused there).
  const meta = migrateStoreData(
    { ...(row.meta as object), principals: {}, idempotency: {} },
    `${source} (store_meta)`,
  );
  const [principals, principalVersions] = applyRows(
    incremental ? previous.data.principals : {},
    incremental ? previous.rows.principals : new Map(),
    row.principals,
    // Checked with its keys sealed, each left sealed (as data) until something opens it: a
    // read of a thousand rows decrypts nothing, and a row written back unchanged keeps its
    // ciphertext (see `RecordSealer.leaveSealed`).
    (id, data) =>
      sealer.leaveSealed(id, checkPrincipal(id, data, source), data as Record<string, unknown>),
  );
  const [idempotency, idempotencyVersions] = applyRows(
    incremental ? previous.data.idempotency : {},
    incremental ? previous.rows.idempotency : new Map(),
    row.idempotency,
    (slot, data) => checkIdempotency(slot, data, source),
  );
  const data = deepFreeze({
    ...meta,
    principals,
    idempotency,
  } as StoreData);
  return {
    version,
    data,
    rows: {
      metaVersion: Number(row.meta_version),
      principals: principalVersions,
      idempotency: idempotencyVersions,
    },
  };
}

/**
 * A record map and its row versions, `rows` applied to copies of the ones given: a NULL row
 * (a tombstone) deletes its record, any other is checked and frozen.
 */
function applyRows(
  records: DeepReadonly<Record<string, unknown>>,
  versions: ReadonlyMap<string, number>,
  rows: [string, number, unknown][] | null,
  check: (id: string, data: unknown) => unknown,
): [Record<string, unknown>, Map<string, number>] {
  const applied: Record<string, unknown> = { ...records };
  const appliedVersions = new Map(versions);
  for (const [id, rowVersion, data] of rows ?? []) {
    if (data === null) {
      delete applied[id];
      appliedVersions.delete(id);
      continue;
    }
    applied[id] = deepFreeze(check(id, data));
    appliedVersions.set(id, Number(rowVersion));
  }
  return [applied, appliedVersions];
}

/** The rows `next` changes relative to `base` (compared as JSON text). */
export function diffDocument(
  base: RowSnapshot | undefined,
  next: StoreData,
  sealer: RecordSealer,
): DocumentChanges {
  const baseData = base?.data;
  const meta = metaOf(next);
  const same =
    baseData !== undefined &&
    (sameMeta(baseData, next) || canonicalJson(metaOf(baseData)) === canonicalJson(meta));
  return {
    meta: same ? undefined : JSON.stringify(meta),
    principals: diffRecords(
      baseData?.principals ?? {},
      next.principals,
      base?.rows.principals,
      (id, record) => sealer.sealedJson(id, record as object),
      (before, record) => sameRecord(before, record, sealer),
    ),
    idempotency: diffRecords(
      baseData?.idempotency ?? {},
      next.idempotency,
      base?.rows.idempotency,
      (_slot, record) => JSON.stringify(record),
      (before, record) => canonicalJson(before) === canonicalJson(record),
    ),
  };
}

function diffRecords(
  base: DeepReadonly<Record<string, unknown>>,
  next: Record<string, unknown>,
  versions: ReadonlyMap<string, number> | undefined,
  serialize: (id: string, record: unknown) => string,
  same: (before: unknown, record: unknown) => boolean,
): RowChange[] {
  const changes: RowChange[] = [];
  for (const [id, record] of Object.entries(next)) {
    const before = base[id];
    // A draft shares the snapshot's unchanged records (frozen): same object, same row.
    if (before !== undefined && before === record) continue;
    const text = serialize(id, record);
    if (before === undefined) changes.push({ id, baseVersion: undefined, data: text });
    // Compared canonically: the same record may list its fields in another order (as read
    // back through the schema, or as the caller built it).
    else if (!same(before, record)) {
      changes.push({ id, baseVersion: versions?.get(id), data: text });
    }
  }
  for (const id of Object.keys(base)) {
    if (!(id in next)) changes.push({ id, baseVersion: versions?.get(id), data: null });
  }
  return changes;
}

/** The same meta row at a glance: a draft copies the profiles map, not the profiles in it. */
function sameMeta(a: DeepReadonly<StoreData>, b: StoreData): boolean {
  return (
    a.schemaVersion === b.schemaVersion &&
    a.currentProfile === b.currentProfile &&
    sameMembers(a.profiles, b.profiles)
  );
}

/** True when two objects have the same members, each the very same value (no deep look). */
function sameMembers(a: object, b: object): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  const [x, y] = [a as Fields, b as Fields];
  return keys.every((key) => key in y && x[key] === y[key]);
}

type Fields = Record<string, unknown>;

/**
 * Whether two principal records are the same as canonical JSON, where a key read sealed (a
 * `SealedKey`, or a `structuredClone` of one) and the same key held in clear (what a handle
 * wrote) are the same: not a row to rewrite. Member by member, so a record that changed
 * (a rotation's every write) is told apart at its first different member, and keys are
 * opened (once per ciphertext) only when everything before them was the same.
 * @throws RekeyError STORE_CORRUPT / STORE_LOCKED / INTERNAL, as `openKey`.
 */
function sameRecord(before: unknown, record: unknown, sealer: RecordSealer): boolean {
  if (!isObject(before) || !isObject(record)) {
    return canonicalJson(before) === canonicalJson(record);
  }
  return sameFields(before, record, (a, b, name) => {
    if (name === "key") return sameKey(a, b, sealer);
    if (name !== "alternates" || !Array.isArray(a) || !Array.isArray(b)) return undefined;
    return (
      a.length === b.length &&
      a.every((entry, index) => {
        const other = b[index];
        if (!isObject(entry) || !isObject(other)) {
          return canonicalJson(entry) === canonicalJson(other);
        }
        return sameFields(entry, other, (x, y, member) =>
          member === "key" ? sameKey(x, y, sealer) : undefined,
        );
      })
    );
  });
}

/**
 * Compares member by member (`undefined` members count as absent, as in canonical JSON);
 * `special` answers for a member it knows, undefined for canonical JSON.
 */
function sameFields(
  a: Fields,
  b: Fields,
  special: (x: unknown, y: unknown, name: string) => boolean | undefined,
): boolean {
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const [x, y] = [a[name], b[name]];
    if (x === y) continue;
    if (x === undefined || y === undefined) return false;
    const answer = special(x, y, name) ?? canonicalJson(x) === canonicalJson(y);
    if (!answer) return false;
  }
  return true;
}

/** The same key: the same JSON, or the same key once opened (keys in clear are strings). */
function sameKey(a: unknown, b: unknown, sealer: RecordSealer): boolean {
  if (canonicalJson(a) === canonicalJson(b)) return true;
  const opens = (key: unknown) => typeof key === "string" || isObject(key);
  if (!opens(a) || !opens(b)) return false;
  return sealer.clearKeyOf(a as RecordKey) === sealer.clearKeyOf(b as RecordKey);
}

function isObject(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkPrincipal(id: string, data: unknown, source: string) {
  const parsed = principalRecordSchema.safeParse(data);
  if (!parsed.success || !isFiledUnderOwnId(id, parsed.data)) {
    throw new RekeyError(
      "STORE_CORRUPT",
      `${source} (principals): the row ${JSON.stringify(id.slice(0, 200))} does not hold its principal's record${parsed.success ? "" : ` at ${describeIssues(parsed.error)}`}`,
      { hint: "Restore the row from a backup; rekey will not read it as empty or overwrite it." },
    );
  }
  return parsed.data;
}

function checkIdempotency(slot: string, data: unknown, source: string) {
  // Records the previous rekey wrote are translated here (see storedIdempotencyRecordSchema).
  const parsed = storedIdempotencyRecordSchema.safeParse(data);
  if (!parsed.success || !IDEMPOTENCY_SLOT_PATTERN.test(slot)) {
    throw new RekeyError(
      "STORE_CORRUPT",
      `${source} (idempotency): the row ${JSON.stringify(slot.slice(0, 80))} is not an idempotency record`,
      { hint: "Delete the row; rekey will not read it as empty or overwrite it." },
    );
  }
  return parsed.data;
}

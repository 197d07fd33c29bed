import { z } from "zod";
import { deliveryTargetSchema } from "../delivery/target-schema.js";
import { RekeyError } from "../errors.js";
import { isSealedKey, type RecordKey } from "./encryption/sealed-key.js";
import { jsonValueSchema } from "./json-value.js";
import { migrateV1ToV2, storeDataV1Schema } from "./migrations/v1-to-v2.js";
import { migrateV2ToV3 } from "./migrations/v2-to-v3.js";
import { isFiledUnderOwnId, RECORD_PRINCIPAL_PATTERN } from "./record-ids.js";
import {
  AUDIT_ACTIONS,
  AUDIT_OUTCOMES,
  type AuditEntry,
  STORE_SCHEMA_VERSION,
  type StoreData,
} from "./types.js";

/**
 * The zod schema of {@link StoreData}, used on everything a store reads back.
 *
 * Objects are strict: a field this rekey does not know means the file was written by something
 * else, and silently dropping it on the next write would lose data. New fields come with a new
 * `schemaVersion` and a step in {@link migrateStoreData}.
 */

const nonEmpty = z.string().min(1);

/** Profile names: what `createRekey` accepts (so never `__proto__` or an empty name). */
export const PROFILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The profile a handle uses when none is named. */
export const DEFAULT_PROFILE = "default";
/** A principalKey: "operator" or "agent:N" with N in 1..2^31-1. */
export const PRINCIPAL_KEY_PATTERN = /^(operator|agent:[1-9]\d{0,9})$/;
/**
 * Idempotency slots: 16 hex digits of the scope's SHA-256 (the principal acting), then the
 * first 32 hex digits of the key's SHA-256.
 */
export const IDEMPOTENCY_SLOT_PATTERN = /^[0-9a-f]{48}$/;
/** A principal record's id: its faucet URL, `#`, its principal. */
const RECORD_ID_PATTERN =
  /^[a-z][a-z0-9+.-]*:\/\/[^#\s]+#(operator(:[1-9]\d{0,9})?|agent:[1-9]\d{0,9})$/;

// `new Date().toISOString()` output: UTC with a `Z`, as every timestamp in the store is.
const isoUtc = z.iso.datetime();
const surface = z.enum(["cli", "mcp", "http", "library"]);

/** Schema of a RotationRecord. */
export const rotationRecordSchema = z.strictObject({
  requestId: nonEmpty,
  oldFingerprint: nonEmpty,
  newFingerprint: nonEmpty,
  rotatedAt: isoUtc,
  cooldownUntil: isoUtc,
  verified: z.boolean(),
  surface,
});

const keySource = z.enum(["register", "login", "create", "rotate", "recover", "import"]);
const recordPrincipal = z.string().regex(RECORD_PRINCIPAL_PATTERN);

/** Schema of a RotationIntent. */
export const rotationIntentSchema = z.strictObject({
  requestId: nonEmpty,
  principal: recordPrincipal,
  actor: recordPrincipal,
  oldFingerprint: nonEmpty,
  startedAt: isoUtc,
  phase: z.enum(["requested", "stored"]),
  surface,
  reserve: z.string().max(8192).optional(),
});

/** Schema of a KeyLostRecord. */
export const keyLostRecordSchema = z.strictObject({
  requestId: nonEmpty,
  oldFingerprint: nonEmpty,
  lostAt: isoUtc,
  recovery: z.string(),
  surface,
  audited: z.boolean(),
});

/**
 * Schema of a RotationPolicy. An optional field of the schema-2 record (added without a version
 * bump: a rekey without schedules refuses a store that holds one, as it does any unknown field).
 * The window is checked as text here and parsed where it is used, so a time zone that a later
 * Node drops makes its schedule fail loudly instead of the whole store unreadable.
 */
export const rotationPolicySchema = z.strictObject({
  maxAgeSeconds: z.number().int().positive(),
  window: z.string().min(1).max(200).optional(),
  jitterSeconds: z.number().int().nonnegative().optional(),
  graceSeconds: z.number().int().positive().optional(),
  setAt: isoUtc,
});

/**
 * A record's key: a non-empty string (in clear, or sealed as stored), or a key a read left
 * sealed (`SealedKey`, or a `structuredClone` of one) in a draft's changed record.
 */
const recordKey = z.custom<RecordKey>(
  (value) => (typeof value === "string" && value.length > 0) || isSealedKey(value),
  "expected a non-empty key",
);

const keyFields = {
  key: recordKey,
  fingerprint: nonEmpty,
  savedAt: isoUtc,
  source: keySource,
};

/** Schema of a PrincipalRecord: the key fields are all present or all absent. */
export const principalRecordSchema = z
  .strictObject({
    faucet: z.url(),
    principal: recordPrincipal,
    name: z.string().optional(),
    operatorId: z.number().int().nonnegative().optional(),
    key: keyFields.key.optional(),
    fingerprint: keyFields.fingerprint.optional(),
    savedAt: keyFields.savedAt.optional(),
    source: keyFields.source.optional(),
    lastRotation: rotationRecordSchema.optional(),
    cooldownUntil: isoUtc.optional(),
    intent: rotationIntentSchema.optional(),
    alternates: z.array(z.strictObject({ ...keyFields, profile: z.string() })).optional(),
    keyLost: keyLostRecordSchema.optional(),
    deliveries: z.array(z.lazy(deliveryTargetSchema)).max(64).optional(),
    policy: rotationPolicySchema.optional(),
  })
  .refine(
    (record) =>
      [record.key, record.fingerprint, record.savedAt, record.source].every(
        (field) => field === undefined,
      ) ||
      [record.key, record.fingerprint, record.savedAt, record.source].every(
        (field) => field !== undefined,
      ),
    { message: "a key needs its fingerprint, savedAt and source" },
  );

const idempotencyRecordBase = {
  requestHash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: isoUtc,
  expiresAt: isoUtc,
};

/** Schema of an IdempotencyRecord as this rekey writes it; a `result` must be JSON. */
export const idempotencyRecordSchema = z.discriminatedUnion("state", [
  z.strictObject({
    ...idempotencyRecordBase,
    state: z.literal("pending"),
    requestId: nonEmpty,
  }),
  z.strictObject({
    ...idempotencyRecordBase,
    state: z.literal("done"),
    result: jsonValueSchema,
  }),
]);

/**
 * An idempotency record as the previous rekey wrote it: an HTTP reply (`status`, `body`), with
 * status 202 and a `pendingRequestId` while it ran. Read and translated, never written.
 */
const legacyIdempotencyRecordSchema = z
  .strictObject({
    ...idempotencyRecordBase,
    status: z.number().int().min(100).max(599),
    body: jsonValueSchema,
    pendingRequestId: nonEmpty.optional(),
  })
  .transform(({ status: _status, body, pendingRequestId, ...base }) =>
    // The status never reached a client: the one caller answered every replay with 200.
    pendingRequestId === undefined
      ? { ...base, state: "done" as const, result: body }
      : { ...base, state: "pending" as const, requestId: pendingRequestId },
  );

/**
 * Schema of an IdempotencyRecord as a store reads it: the current shape, or the previous one
 * translated on read. No schema version step: the old shape maps one to one onto the new,
 * records live 24 hours, and each store (a file's document, PostgreSQL's rows) reads records
 * through this one schema, so translating here serves all of them without rewriting a store.
 */
export const storedIdempotencyRecordSchema = z.union([
  idempotencyRecordSchema,
  legacyIdempotencyRecordSchema,
]);

/** Schema of a Profile: a view naming records, holding no key. */
export const profileSchema = z.strictObject({
  baseUrl: z.url(),
  operator: z
    .string()
    .regex(/^operator(:[1-9]\d{0,9})?$/)
    .optional(),
  actsAs: recordPrincipal.optional(),
});

/** Schema of the current StoreData (use migrateStoreData on anything read). */
export const storeDataSchema = z
  .strictObject({
    schemaVersion: z.literal(STORE_SCHEMA_VERSION),
    principals: z.record(z.string().regex(RECORD_ID_PATTERN), principalRecordSchema),
    profiles: z.record(z.string().regex(PROFILE_NAME_PATTERN), profileSchema),
    currentProfile: z.string().regex(PROFILE_NAME_PATTERN).optional(),
    idempotency: z.record(
      z.string().regex(IDEMPOTENCY_SLOT_PATTERN),
      storedIdempotencyRecordSchema,
    ),
  })
  .refine(
    (data) =>
      Object.entries(data.principals).every(([id, record]) => isFiledUnderOwnId(id, record)),
    { message: "a principal record is filed under its own faucet and principal" },
  );

/** Schema of one AuditEntry (a line of the audit log). */
export const auditEntrySchema = z.strictObject({
  seq: z.number().int().positive(),
  at: isoUtc,
  surface,
  profile: z.string(),
  principal: z.string(),
  action: z.enum(AUDIT_ACTIONS),
  outcome: z.enum(AUDIT_OUTCOMES),
  oldFingerprint: z.string().optional(),
  newFingerprint: z.string().optional(),
  cooldownUntil: isoUtc.optional(),
  requestId: z.string().optional(),
  errorCode: z.string().optional(),
  deliveryTarget: z.string().max(300).optional(),
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});

/**
 * One step per old schema version: `MIGRATIONS[n]` turns version-n data into version n+1, or
 * throws STORE_CORRUPT naming where version-n data is wrong. A new version means bumping
 * STORE_SCHEMA_VERSION, adding a step in `migrations/`, and updating `storeDataSchema`.
 */
const MIGRATIONS: Record<
  number,
  (raw: Record<string, unknown>, source: string) => Record<string, unknown>
> = {
  1: (raw, source) => {
    const parsed = storeDataV1Schema().safeParse(raw);
    if (!parsed.success) {
      throw new RekeyError(
        "STORE_CORRUPT",
        `${source} does not match the store schema (version 1) at ${describeIssues(parsed.error)}`,
        { hint: "Restore it from a backup; rekey will not overwrite it." },
      );
    }
    return migrateV1ToV2(parsed.data) as unknown as Record<string, unknown>;
  },
  // Schema 2 is schema 3 with keys in clear: the result is checked by storeDataSchema.
  2: (raw) => migrateV2ToV3(raw),
};

/** Describes where a zod parse failed, without echoing the offending value. */
export function describeIssues(error: z.ZodError, limit = 3): string {
  const shown = error.issues.slice(0, limit).map((issue) => {
    const where = issue.path.length === 0 ? "(root)" : issue.path.map(String).join(".");
    return `${where}: ${issue.message}`;
  });
  const more = error.issues.length > limit ? ` (+${error.issues.length - limit} more)` : "";
  return `${shown.join("; ")}${more}`;
}

/**
 * Brings raw store content (already JSON-parsed) to the current schema and validates it.
 *
 * @param raw what was read, e.g. the `data` member of `credentials.json`.
 * @param source names the file or table in error messages.
 * @throws RekeyError STORE_CORRUPT when it is not a store document, was written by a newer
 *   rekey (an unknown `schemaVersion`), or does not match the schema; the message says where.
 */
export function migrateStoreData(raw: unknown, source = "the store"): StoreData {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new RekeyError("STORE_CORRUPT", `${source} does not hold a store document`);
  }
  let current = raw as Record<string, unknown>;
  const version = current.schemaVersion;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw new RekeyError("STORE_CORRUPT", `${source} has no valid schemaVersion`);
  }
  if (version > STORE_SCHEMA_VERSION) {
    throw new RekeyError(
      "STORE_CORRUPT",
      `${source} was written by a newer rekey (schema version ${version}; this rekey reads up to ${STORE_SCHEMA_VERSION})`,
      { hint: "Upgrade rekey to read this store; it was left unchanged." },
    );
  }
  for (let step = version; step < STORE_SCHEMA_VERSION; step++) {
    const migrate = MIGRATIONS[step];
    if (migrate === undefined) {
      throw new RekeyError("INTERNAL", `No migration from store schema version ${step}`);
    }
    current = migrate(current, source);
  }
  const parsed = storeDataSchema.safeParse(current);
  if (!parsed.success) {
    throw new RekeyError(
      "STORE_CORRUPT",
      `${source} does not match the store schema at ${describeIssues(parsed.error)}`,
      { hint: "Restore it from a backup; rekey will not overwrite it." },
    );
  }
  return parsed.data as StoreData;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The store document with its records left to be checked one by one (`z.custom` looks at the
 * record maps without walking them: a thousand-entry map costs nothing here).
 */
const storeDataShellSchema = z.strictObject({
  schemaVersion: z.literal(STORE_SCHEMA_VERSION),
  principals: z.custom<Record<string, unknown>>(isPlainObject, "expected an object"),
  profiles: z.record(z.string().regex(PROFILE_NAME_PATTERN), profileSchema),
  currentProfile: z.string().regex(PROFILE_NAME_PATTERN).optional(),
  idempotency: z.custom<Record<string, unknown>>(isPlainObject, "expected an object"),
});

/**
 * Checks data before a store writes it, so a store never writes what it could not read back.
 * Records that are frozen come unchanged from a snapshot a store read and checked (see
 * `draftOf`): only the others are checked, so writing one record of a thousand checks one.
 * Returns `data` itself.
 *
 * @throws RekeyError INTERNAL when `data` does not match the store schema (a caller bug).
 */
export function assertWritableStoreData(data: StoreData): StoreData {
  const refuse = (where: string) =>
    new RekeyError(
      "INTERNAL",
      `Refusing to write store data that does not match the schema at ${where}`,
    );
  const shell = storeDataShellSchema.safeParse(data);
  if (!shell.success) throw refuse(describeIssues(shell.error));
  for (const id in data.principals) {
    const record = data.principals[id];
    if (Object.isFrozen(record)) continue;
    const parsed = principalRecordSchema.safeParse(record);
    if (!parsed.success)
      throw refuse(describeIssues(parsed.error).replace(/^/, `principals.${id}.`));
    if (!isFiledUnderOwnId(id, parsed.data)) {
      throw refuse(
        `principals.${id}: a principal record is filed under its own faucet and principal`,
      );
    }
  }
  for (const slot in data.idempotency) {
    const record = data.idempotency[slot];
    if (Object.isFrozen(record)) continue;
    if (!IDEMPOTENCY_SLOT_PATTERN.test(slot))
      throw refuse(`idempotency: slot ${slot.slice(0, 64)}`);
    const parsed = idempotencyRecordSchema.safeParse(record);
    if (!parsed.success) throw refuse(`idempotency.${slot}.${describeIssues(parsed.error)}`);
  }
  return data;
}

/**
 * Checks an audit entry before a store appends it, so a store never writes an entry it could
 * not read back.
 *
 * @throws RekeyError INTERNAL when `entry` does not match the audit schema (a caller bug).
 */
export function assertWritableAuditEntry(entry: AuditEntry): AuditEntry {
  const parsed = auditEntrySchema.safeParse(entry);
  if (!parsed.success) {
    throw new RekeyError(
      "INTERNAL",
      `Refusing to append an audit entry that does not match the schema at ${describeIssues(parsed.error)}`,
    );
  }
  return entry;
}

import { z } from "zod";
import { RekeyError } from "../errors.js";
import { type AuditEntry, STORE_SCHEMA_VERSION, type StoreData } from "./types.js";

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
/** A principalKey: "operator" or "agent:N" with N in 1..2^31-1. */
export const PRINCIPAL_KEY_PATTERN = /^(operator|agent:[1-9]\d{0,9})$/;
/** Idempotency slots are the first 32 hex digits of the key's SHA-256. */
export const IDEMPOTENCY_SLOT_PATTERN = /^[0-9a-f]{32}$/;

const principalKeyField = z.string().regex(PRINCIPAL_KEY_PATTERN);
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

/** Schema of a StoredKey. */
export const storedKeySchema = z.strictObject({
  key: nonEmpty,
  fingerprint: nonEmpty,
  savedAt: isoUtc,
  source: z.enum(["register", "login", "create", "rotate", "recover", "import"]),
  name: z.string().optional(),
  operatorId: z.number().int().nonnegative().optional(),
  lastRotation: rotationRecordSchema.optional(),
  cooldownUntil: isoUtc.optional(),
});

/** Schema of a RotationIntent. */
export const rotationIntentSchema = z.strictObject({
  requestId: nonEmpty,
  principal: principalKeyField,
  actor: principalKeyField,
  oldFingerprint: nonEmpty,
  startedAt: isoUtc,
  phase: z.enum(["requested", "stored"]),
  surface,
});

/** Schema of an IdempotencyRecord; `body` must be JSON. */
export const idempotencyRecordSchema = z.strictObject({
  requestHash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: isoUtc,
  expiresAt: isoUtc,
  status: z.number().int().min(100).max(599),
  body: z.json(),
});

/** Schema of a Profile; agents are keyed by decimal id. */
export const profileSchema = z.strictObject({
  baseUrl: z.url(),
  active: principalKeyField,
  operator: storedKeySchema.optional(),
  agents: z.record(z.string().regex(/^[1-9]\d{0,9}$/), storedKeySchema),
  intents: z.record(principalKeyField, rotationIntentSchema),
  idempotency: z.record(z.string().regex(IDEMPOTENCY_SLOT_PATTERN), idempotencyRecordSchema),
});

/** Schema of the current StoreData (use migrateStoreData on anything read). */
export const storeDataSchema = z.strictObject({
  schemaVersion: z.literal(STORE_SCHEMA_VERSION),
  profiles: z.record(z.string().regex(PROFILE_NAME_PATTERN), profileSchema),
});

/** Schema of one AuditEntry (a line of the audit log). */
export const auditEntrySchema = z.strictObject({
  seq: z.number().int().positive(),
  at: isoUtc,
  surface,
  profile: z.string(),
  principal: z.string(),
  action: z.enum(["rotate", "recover", "register", "login", "create_agent", "import", "resolve"]),
  outcome: z.enum(["success", "failure", "recovered", "not_rotated", "key_lost"]),
  oldFingerprint: z.string().optional(),
  newFingerprint: z.string().optional(),
  cooldownUntil: isoUtc.optional(),
  requestId: z.string().optional(),
  errorCode: z.string().optional(),
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});

/**
 * One step per old schema version: `MIGRATIONS[n]` turns version-n data into version n+1.
 * Only version 1 exists, so it is empty; adding v2 means bumping STORE_SCHEMA_VERSION, adding
 * `1: (v1) => v2`, and updating `storeDataSchema`.
 */
const MIGRATIONS: Record<number, (raw: Record<string, unknown>) => Record<string, unknown>> = {};

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
    current = migrate(current);
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

/**
 * Checks data before a store writes it, so a store never writes what it could not read back.
 *
 * @throws RekeyError INTERNAL when `data` does not match the store schema (a caller bug).
 */
export function assertWritableStoreData(data: StoreData): StoreData {
  const parsed = storeDataSchema.safeParse(data);
  if (!parsed.success) {
    throw new RekeyError(
      "INTERNAL",
      `Refusing to write store data that does not match the schema at ${describeIssues(parsed.error)}`,
    );
  }
  return parsed.data as StoreData;
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

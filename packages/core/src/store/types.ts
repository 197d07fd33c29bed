/**
 * The credential store contract. Every implementation (memory, file, PostgreSQL) passes the
 * same contract suite in `store/contract-suite.ts`.
 *
 * The whole store is one versioned document: reads return a snapshot, writes are
 * compare-and-set on the version. This keeps "new key + cooldown + rotation record" one atomic
 * update on every backend.
 */

import type { DeliveryTarget } from "../delivery/target-schema.js";
import type { RecordKey, SealedKey } from "./encryption/sealed-key.js";

/** Which front end did something, for the audit log. */
export type Surface = "cli" | "mcp" | "http" | "library";

/** How a key came to be in the store. */
export type KeySource = "register" | "login" | "create" | "rotate" | "recover" | "import";

/** A rotation that completed (the new key is stored). */
export interface RotationRecord {
  requestId: string;
  oldFingerprint: string;
  newFingerprint: string;
  /** ISO-8601 UTC. */
  rotatedAt: string;
  /** ISO-8601 UTC: the server's `cooldown_until`, else 60/30 minutes after `rotatedAt`. */
  cooldownUntil: string;
  /** Whether `whoami` with the new key answered as the same principal. */
  verified: boolean;
  surface: Surface;
}

/**
 * A rotation policy as the store keeps it on a principal's record (an optional field of the
 * schema-2 record; see `schedule/policy.ts`). Durations are whole seconds, the window its canonical text.
 */
export interface RotationPolicy {
  /** Rotate once the key is this old. */
  maxAgeSeconds: number;
  /** When a rotation may start (see window.ts); absent: any time. */
  window?: string;
  /** Spreads principals over up to this long after the window opens (or max-age is reached). */
  jitterSeconds?: number;
  /** How long past its scheduled rotation a key counts as overdue (default one day). */
  graceSeconds?: number;
  /** ISO-8601 UTC: when the policy was set. */
  setAt: string;
}

/**
 * The key fields of a principal record; all present, or none. `key` is the secret, in clear or
 * left sealed by the read that produced the record: `openKey` gives it in clear.
 */
export interface KeyFields {
  key: RecordKey;
  fingerprint: string;
  /** ISO-8601 UTC: when this key was stored. */
  savedAt: string;
  source: KeySource;
}

/**
 * A key that another profile held for the same principal when a schema-1 store was migrated:
 * kept (never dropped) until `rekey doctor --repair` asks the faucet which key is alive.
 */
export interface AlternateKey extends KeyFields {
  /** The schema-1 profile that held it. */
  profile: string;
}

/**
 * One principal on one faucet, held once in the store: every profile, process and front end
 * that touches it reads and writes this record, so all of them see the same key, cooldown,
 * journal and history.
 */
export interface PrincipalRecord {
  /** The faucet, as {@link faucetIdOf} normalises its URL (origin + path). */
  faucet: string;
  /** "operator:12" or "agent:7" ("operator" alone only for a migrated key of unknown id). */
  principal: string;
  /** The faucet's name for the principal, when known. */
  name?: string;
  /** The operator account: the operator's own id, or the id of the operator owning an agent. */
  operatorId?: number;
  /**
   * The current key (with fingerprint, savedAt, source), absent when none is held. In clear or
   * sealed (a store that seals keys at rest leaves them sealed on read): read it with `openKey`.
   */
  key?: RecordKey;
  fingerprint?: string;
  savedAt?: string;
  source?: KeySource;
  /** The last rotation that issued a key for this principal. */
  lastRotation?: RotationRecord;
  /** ISO-8601 UTC: end of the withdrawal cooldown that the last rotation/recover started. */
  cooldownUntil?: string;
  /** The unfinished rotation of this principal (the journal), if any. */
  intent?: RotationIntent;
  /** Other keys found for this principal by the schema-1 migration, pending a check. */
  alternates?: AlternateKey[];
  /** Where the key is delivered after each rotation, with each target's delivery state. */
  deliveries?: DeliveryTarget[];
  /** When this principal's key is rotated by `rekey rotate --due` and the scheduler. */
  policy?: RotationPolicy;
  /**
   * A key the faucet invalidated while its successor never reached the store: shown by every
   * status until a new key is stored (recover, rotate as its operator, rescue import) or the
   * loss is acknowledged. Written in the same update that drops the dead key.
   */
  keyLost?: KeyLostRecord;
}

/** A durable record of a lost key: what, when, and the way back. */
export interface KeyLostRecord {
  /** The rotation that lost it. */
  requestId: string;
  oldFingerprint: string;
  /** ISO-8601 UTC. */
  lostAt: string;
  /** How to get back in, for a person. */
  recovery: string;
  surface: Surface;
  /** Whether the `key_lost` audit entry is written; whoever finds it false writes it. */
  audited: boolean;
}

/** A principal record that holds a key. */
export type StoredKey = PrincipalRecord & KeyFields;

/**
 * A rotation that started and has not been resolved. Written durably before the upstream call;
 * cleared only once the new key is stored and verified, or the rotation is proved not to have
 * happened. Never dropped silently.
 */
export interface RotationIntent {
  requestId: string;
  /** The record's principal being rotated ("operator:12", "agent:7"). */
  principal: string;
  /** The record principal whose key authorises the call. */
  actor: string;
  oldFingerprint: string;
  /** ISO-8601 UTC. */
  startedAt: string;
  /** `requested`: upstream called, new key not yet stored. `stored`: stored, not yet verified. */
  phase: "requested" | "stored";
  surface: Surface;
  /**
   * Padding written with the journal entry and dropped when the key is stored, so the journal
   * write needs at least the space of the final document: a store that takes it takes the key.
   */
  reserve?: string;
}

/**
 * What one operation under an idempotency key came to, held 24 hours: `pending` while it runs
 * (or after a crash cut it short), `done` with its JSON result. No transport's status code: a
 * front end maps the outcome to its own (HTTP in apps/http).
 */
export type IdempotencyRecord = IdempotencyRecordBase &
  (
    | {
        state: "pending";
        /**
         * The `request_id` of its rotation, recorded before it runs: a retry after a crash
         * finds it and asks for that rotation again (which returns it, once journaled or done).
         */
        requestId: string;
      }
    | { state: "done"; result: unknown }
  );

interface IdempotencyRecordBase {
  /** SHA-256 of the canonical request: the same key with another request is refused. */
  requestHash: string;
  /** ISO-8601 UTC. */
  createdAt: string;
  /** ISO-8601 UTC. */
  expiresAt: string;
}

/**
 * A named view: a faucet, the operator whose agents it manages, and the principal it acts as.
 * It holds no key: keys live in the principals' records, which outlive any profile.
 */
export interface Profile {
  /** The faucet URL of this profile: a key is never sent anywhere else. */
  baseUrl: string;
  /** The operator record's principal ("operator:12") whose agents this profile manages. */
  operator?: string;
  /** The principal it acts as ("agent:7"); absent: its operator. */
  actsAs?: string;
}

/**
 * The format of the store document. 3: every key sealed at rest (see `store/encryption/`);
 * the document as callers see it is the same as in 2, but for keys a read leaves sealed
 * (`SealedKey`, opened by `openKey`).
 */
export const STORE_SCHEMA_VERSION = 3;

export interface StoreData {
  schemaVersion: typeof STORE_SCHEMA_VERSION;
  /** Keyed by {@link recordIdOf}: faucet and principal. */
  principals: Record<string, PrincipalRecord>;
  profiles: Record<string, Profile>;
  /** The profile used when none is named (`rekey profiles use`). */
  currentProfile?: string;
  /** Keyed by slot: a hash of the scope (the acting principal) and the idempotency key. */
  idempotency: Record<string, IdempotencyRecord>;
}

/** A consistent read of the whole store. `version` 0 means nothing was ever written. */
/** `T` with every property and array read-only, all the way down. */
export type DeepReadonly<T> = T extends SealedKey
  ? T
  : T extends readonly (infer Item)[]
    ? readonly DeepReadonly<Item>[]
    : T extends object
      ? { readonly [Key in keyof T]: DeepReadonly<T[Key]> }
      : T;

/**
 * One version of the store document. Stores hand the same snapshot to every reader until the
 * data changes, deep-frozen: a reader that needs to change it works on a copy (see
 * `updateStore`), and an accidental write throws a TypeError instead of corrupting what others
 * read.
 */
export interface StoreSnapshot {
  readonly version: number;
  readonly data: DeepReadonly<StoreData>;
}

/** Options of {@link CredentialStore.read}. */
/** Options of {@link CredentialStore.compareAndSet}. */
export interface WriteOptions {
  /**
   * `false`: the write may be lost by a crash or power cut that follows it (the store then
   * holds the write before it), but never torn, and every reader sees it once it resolves.
   * Only for a write whose loss the next run repairs by itself: the engine passes it for the
   * write that clears a finished rotation's journal (phase `stored`, audit entry appended):
   * a lost clear leaves that journal, and resolving it writes no second entry (`auditOnce`).
   * Default true: durable before it resolves. A store may always write durably.
   */
  durable?: boolean;
  /**
   * Audit entries to append, in order, with this write: durably before the data is visible,
   * and never by a refused compare-and-set. A store that commits both in one transaction
   * (PostgreSQL) writes them together or neither; one whose data and log are two files (the
   * file store) may leave the entries without the data when the write fails after appending
   * them (it then throws, never reports a conflict, so a caller does not append them twice).
   * Only for a store whose {@link CredentialStore.appendsAuditWithWrite} is true; the others do
   * not look at it, so a caller checks that flag first and otherwise appends before writing.
   */
  audit?: readonly AuditEventInput[];
}

export interface ReadOptions {
  /**
   * Accept a snapshot this store handle confirmed current at most `maxAgeMs` ago (default 0:
   * confirm now). Writes through the same handle are seen at once; writes by other handles or
   * processes within `maxAgeMs`. For hot read-only views (a status endpoint polled many times a
   * second), never for a read that decides a write. Stores with nothing to confirm (memory)
   * ignore it.
   */
  maxAgeMs?: number;
}

export type CompareAndSetResult =
  | { ok: true; snapshot: StoreSnapshot }
  | { ok: false; current: StoreSnapshot };

/** An exclusive lease on a named lock (one per principal for rotations). */
export interface StoreLock {
  readonly name: string;
  /**
   * With {@link LockOptions.read}, a store may answer the read the holder would make next: a
   * snapshot read after the lock was granted (as `read()` then would), in the same round trip.
   * Undefined when the store does not (file, memory): the holder reads.
   */
  readonly snapshot?: StoreSnapshot;
  /** Ends the lease; safe to call twice. */
  release(): Promise<void>;
}

export interface LockOptions {
  /**
   * How long the lease lasts without being renewed. Implementations renew it while the holder
   * process lives; a holder that crashed loses it after at most this long.
   */
  leaseMs: number;
  /** How long to wait for a held lock before giving up with ROTATION_IN_PROGRESS. */
  waitMs: number;
  /** The holder reads the store next: a store may return that snapshot with the lock. */
  read?: boolean;
}

/** One audit log entry, chained to the previous one by SHA-256. */
/** What an audit entry records was done; the store's schema and the JSON vocabulary take it from here. */
export const AUDIT_ACTIONS = [
  "rotate",
  "recover",
  "register",
  "login",
  "create_agent",
  "import",
  "resolve",
  "adopt",
  "forget",
  "migrate",
  "repoint",
  "acknowledge",
  "repair",
  "deliver",
  "rekey_master",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** How an audited action ended; a delivery is `pending`, then `success` or `failure`. */
export const AUDIT_OUTCOMES = [
  "success",
  "failure",
  "recovered",
  "not_rotated",
  "key_lost",
  "pending",
] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditEntry {
  seq: number;
  /** ISO-8601 UTC. */
  at: string;
  surface: Surface;
  profile: string;
  /** The principal: "operator", "operator:12" or "agent:7". */
  principal: string;
  action: AuditAction;
  /** For `deliver`: `pending` when a delivery starts, then `success` or `failure`. */
  outcome: AuditOutcome;
  oldFingerprint?: string;
  newFingerprint?: string;
  cooldownUntil?: string;
  requestId?: string;
  /** Error code, for failures. */
  errorCode?: string;
  /** For `deliver`: the target's id and description ("lightning-wallet-1 lightning-wallet /home/…"). */
  deliveryTarget?: string;
  /** SHA-256 hex of the previous entry ("0"*64 for the first). */
  prevHash: string;
  /** SHA-256 hex of this entry's canonical JSON without `hash`. */
  hash: string;
}

export type AuditEventInput = Omit<AuditEntry, "seq" | "prevHash" | "hash">;

export interface StoreHealth {
  ok: boolean;
  kind: string;
  location: string;
  /** Problems found (file modes, unreadable file...), key-free. */
  problems: string[];
  /** Whether the keys it holds are sealed at rest (stores that keep them on disk). */
  encryption?: StoreEncryption;
}

/** Whether a store's keys are sealed at rest, and under which master key. Key-free. */
export interface StoreEncryption {
  /** `encrypted`: every key stored is sealed; `clear`: some are not (yet). */
  state: "encrypted" | "clear";
  /** How many keys are stored in clear. */
  clearKeys: number;
  /** The id of the master key that seals new writes, once it was loaded. */
  keyId?: string;
  /** Where that key comes from: an environment variable's name or a file path. */
  keySource?: string;
  /**
   * How many keys are sealed under another master key than `keyId` (one still accepted, such
   * as the store's own `master.key` once a key source is configured): the next write seals
   * them under `keyId`, after which only `keyId` opens them.
   */
  underOtherKeys?: number;
}

/**
 * A pluggable credential store.
 *
 * Errors: STORE_UNAVAILABLE (cannot read/write), STORE_CORRUPT (unreadable content: never
 * treated as empty, never overwritten), ROTATION_IN_PROGRESS (lock wait elapsed).
 */
export interface CredentialStore {
  /** "memory", "file", "postgres". */
  readonly kind: string;
  /** Where the data lives, for `status` (a path, a redacted URL, "memory"). */
  readonly location: string;
  /** The current snapshot, or with `maxAgeMs` one confirmed current at most that long ago. */
  read(options?: ReadOptions): Promise<StoreSnapshot>;
  /** Writes `data` if the stored version is still `expectedVersion`; the new version is +1. */
  compareAndSet(
    expectedVersion: number,
    data: StoreData,
    options?: WriteOptions,
  ): Promise<CompareAndSetResult>;
  /** Takes an exclusive lease on `name`, waiting up to `waitMs`. */
  lock(name: string, options: LockOptions): Promise<StoreLock>;
  /**
   * True when `compareAndSet` takes {@link WriteOptions.audit}: PostgreSQL (one statement
   * writes the rows and the entry, one round trip fewer than an append then a write) and the
   * file store (one write lock, the entry's fsync overlapping the new file's). Stores that leave
   * it out (memory) ignore the option.
   */
  readonly appendsAuditWithWrite?: boolean;
  /** Appends an entry to the audit log, computing `seq`, `prevHash` and `hash`. */
  appendAudit(event: AuditEventInput): Promise<AuditEntry>;
  readAudit(): Promise<AuditEntry[]>;
  /**
   * Calls `listener` after the store changes, in this process or (for shared backends) in
   * another. Returns an unsubscribe function. Listeners re-read; the notification carries
   * nothing.
   */
  watch(listener: () => void): () => void;
  /** @throws RekeyError STORE_UNAVAILABLE when a write would fail (read-only dir, full disk...). */
  checkWritable(): Promise<void>;
  /**
   * Proves the audit log can take the next entry, before a rotation calls the faucet. A log
   * whose last line is torn (a crash mid-append) is repaired: the torn bytes are moved aside
   * intact to the returned path (never deleted), and the caller audits the repair. Stores whose
   * appends are transactional (PostgreSQL, memory) may omit it; `checkWritable` covers them.
   * @throws RekeyError STORE_UNAVAILABLE / STORE_CORRUPT when no entry can be appended.
   */
  prepareAudit?(): Promise<{ movedAside?: string }>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function emptyStoreData(): StoreData {
  return { schemaVersion: STORE_SCHEMA_VERSION, principals: {}, profiles: {}, idempotency: {} };
}

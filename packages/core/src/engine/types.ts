import type { WhoamiResult } from "../client/faucet-client.js";
import type { CooldownMinutes } from "../cooldowns.js";
import type { DeliveryOutcome, DeliveryStatus } from "../delivery/delivery-journal.js";
import type { Principal } from "../principal.js";
import type {
  AuditEntry,
  RotationPolicy,
  RotationRecord,
  StoreEncryption,
  Surface,
} from "../store/types.js";
import type { DeliveryOperations } from "./deliveries.js";

/** Who the faucet says a key belongs to (its `whoami` reply). */
export type Identity = WhoamiResult;

/** What to rotate, and how. */
export interface RotateRequest {
  /** The principal whose key is rotated. Default: the profile's active principal. */
  target?: Principal;
  /**
   * Whose key authorises the call. Default: the profile's active principal. An agent may
   * rotate only itself; an operator itself or one of its agents.
   */
  actor?: Principal;
  /** Return the plan and call nothing upstream. */
  dryRun?: boolean;
  /** Rotate even inside the cooldown of the previous rotation (restarts the withdrawal block). */
  force?: boolean;
  /** Include the new raw key in the result (`apiKey`). Only for explicit reveal paths. */
  reveal?: boolean;
  /**
   * The fingerprint of the key the caller means to rotate (the one a plan it showed named).
   * If a rotation elsewhere has replaced exactly that key, its result is returned (`shared`)
   * instead of rotating the new key or refusing its cooldown. Default: the key this call
   * reads first, before it waits on anything.
   */
  expectedFingerprint?: string;
  /**
   * The rotation's `request_id` (default: a new one). A call with the id of a rotation already
   * done returns it (`shared`) instead of rotating again: an idempotent retry after a crash.
   */
  requestId?: string;
  signal?: AbortSignal;
}

/** The plan a dry run returns. */
export interface RotationPlan {
  dryRun: true;
  principal: Principal;
  /** "operator" or "agent 7". */
  label: string;
  currentFingerprint: string;
  /** The faucet action that would be called. */
  action: "regenerate_operator_key" | "regenerate_agent_key";
  cooldownMinutes: CooldownMinutes;
  /** ISO-8601 UTC: when the cooldown would end if the rotation ran now. */
  cooldownWouldEndAt: string;
  /** ISO-8601 UTC, when the principal is still inside a previous rotation's cooldown. */
  currentCooldownUntil?: string | undefined;
  /** Whether a real run would be refused with COOLDOWN_ACTIVE (without force). */
  blockedByCooldown: boolean;
}

/** A completed rotation. Never carries the raw key unless `reveal` was asked. */
export interface RotationResult {
  dryRun: false;
  principal: Principal;
  label: string;
  oldFingerprint: string;
  newFingerprint: string;
  /** ISO-8601 UTC. */
  rotatedAt: string;
  /** ISO-8601 UTC: end of the withdrawal cooldown this rotation started. */
  cooldownUntil: string;
  cooldownMinutes: CooldownMinutes;
  /** `whoami` with the new key answered as the same principal. */
  verified: boolean;
  requestId: string;
  /**
   * True when another caller (another process, or a concurrent call in this one) did the
   * rotation and this call returns its result instead of rotating again.
   */
  shared: boolean;
  /**
   * The key is stored but the audit log refused the rotation's entry: the journal keeps it
   * owed, and the next run that resolves it appends it.
   */
  auditPending?: boolean;
  /** The new raw key: present only when `reveal` was asked. */
  apiKey?: string;
  /**
   * The deliveries this rotation made to the principal's targets (absent when it has none, or
   * the rotation was shared). A failed one never undoes the rotation: it is listed here, kept
   * as failing in the store, and retried.
   */
  deliveries?: DeliveryOutcome[];
  /**
   * A recovery's: the operator account the recovery code restored (the faucet's reply says
   * which), so that a profile that took an account it could not check sees whose it is.
   */
  operatorId?: number;
}

/** What `status` shows for one principal. */
export interface KeyStatus {
  principal: Principal;
  label: string;
  profile: string;
  baseUrl: string;
  hasKey: boolean;
  /** Where the key came from: the store, or the environment (read-only seed). */
  keySource?: "store" | "env" | undefined;
  fingerprint?: string | undefined;
  name?: string | undefined;
  /** ISO-8601 UTC: when the current key was stored. */
  savedAt?: string | undefined;
  keyAgeSeconds?: number | undefined;
  lastRotation?: RotationRecord | undefined;
  /** ISO-8601 UTC; absent when no cooldown is running. */
  cooldownUntil?: string | undefined;
  /** 0 when no cooldown is running. */
  cooldownRemainingSeconds: number;
  /** An unfinished rotation, if one is recorded. */
  pendingRotation?:
    | { requestId: string; startedAt: string; phase: "requested" | "stored" }
    | undefined;
  /**
   * The principal's key was lost (the faucet invalidated it, its successor never reached the
   * store): shown until a new key is stored or the loss is acknowledged.
   */
  keyLost?:
    | { requestId: string; oldFingerprint: string; lostAt: string; recovery: string }
    | undefined;
  /**
   * No key is held and no loss is shown: how to get one. A principal the store knows (its
   * record stays after `acknowledge` or a migration) gets a new key the way a lost one does
   * (`rekey recover` for the operator, a rotation by the operator for an agent); a profile that
   * knows none registers or logs in.
   */
  nextStep?: string | undefined;
  /** The principal's delivery targets: current, stale (an older key) or failing. */
  deliveries?: DeliveryStatus[] | undefined;
  store: { kind: string; location: string };
  /** The rotation policy and where the key stands against it, when a policy is set. */
  schedule?: KeySchedule | undefined;
}

/** A key's rotation policy and its due state (see `schedule/policy.ts`). Times ISO-8601 UTC. */
export interface KeySchedule {
  policy: RotationPolicy;
  /** When the key reaches its max-age. */
  dueAt: string;
  /** When a scheduled run rotates it next (absent: its window does not open in nine days). */
  nextRotationAt?: string | undefined;
  /** Whether the policy's window is open now (true without a window). */
  inWindow: boolean;
  /** Due now. */
  due: boolean;
  /** Past its scheduled rotation plus grace. */
  overdue: boolean;
}

/** One of the operator's agents, as the faucet lists it, with what the store holds for it. */
export interface AgentStatus {
  id: number;
  name: string;
  balanceSats: number;
  isActive: boolean;
  /** Whether the store holds a key for this agent. */
  hasKey: boolean;
  fingerprint?: string | undefined;
  cooldownUntil?: string | undefined;
  cooldownRemainingSeconds: number;
  lastRotatedAt?: string | undefined;
}

/** What resolving an unfinished rotation found. */
export interface PendingResolution {
  principal: Principal;
  label: string;
  requestId: string;
  /**
   * `recovered`: the rotation had happened; its key is now stored.
   * `not_rotated`: the old key still works; the rotation never happened.
   * `verified`: the key had been stored; verification finished.
   * `key_lost`: the old key is dead and the new one cannot be had (see the error's recovery).
   */
  outcome: "recovered" | "not_rotated" | "verified" | "key_lost";
  newFingerprint?: string | undefined;
}

export type { AuditEntry, Surface };

/** A key as the key provider hands it out. `key` is raw: use it, never log it. */
export interface CurrentKey {
  principal: Principal;
  key: string;
  fingerprint: string;
}

/**
 * The current key per principal, cached and refreshed when the store changes, so a rotation
 * made by another process is used without a restart.
 */
export interface KeyProvider {
  /** @throws RekeyError NOT_FOUND when no key is held for the principal. */
  current(principal?: Principal): Promise<CurrentKey>;
  /**
   * Runs `use` with the current key; on UNAUTHORIZED re-reads the store once and retries if the
   * key changed meanwhile (another process rotated it).
   */
  withKey<T>(principal: Principal | undefined, use: (key: string) => Promise<T>): Promise<T>;
}

/** The audit log check. */
export type AuditVerification =
  | { ok: true; count: number }
  | { ok: false; count: number; brokenAt: number; reason: string };

/** Readiness of the store and the upstream faucet. */
export interface HealthReport {
  ok: boolean;
  /**
   * `readable`: the credential document reads. Leftovers (`problems` such as an old temp file
   * or a torn audit line) make `ok` false but leave the store readable: a readiness probe
   * looks at `readable`, doctor at `problems`.
   */
  store: {
    ok: boolean;
    readable: boolean;
    kind: string;
    location: string;
    problems: string[];
    /** Whether the stored keys are sealed at rest (file and PostgreSQL stores). */
    encryption?: StoreEncryption;
  };
  upstream: { ok: boolean; baseUrl: string; error?: string | undefined };
}

/** What the faucet says of one stored key (doctor). */
/**
 * A key in a rescue file that the store does not hold (the store refused it when the faucet
 * issued it): shown by fingerprint, brought in with `rekey rescue import PATH`.
 */
export interface RescuedKey {
  /** The rescue file. */
  path: string;
  /** The record principal it belongs to: "operator:12", "agent:7". */
  principal: string;
  label: string;
  fingerprint: string;
  /** What issued it: register, rotate, recover... */
  source: string;
  /** ISO-8601 UTC: when it was written. */
  savedAt: string;
  /** A registration's: the profile that registered (its import must name it). */
  profile?: string;
}

export interface KeyCheck {
  /** The record's principal: "operator:12", "agent:7". */
  principal: string;
  label: string;
  fingerprint: string;
  /** The record's current key (false: a key kept beside it by the migration). */
  current: boolean;
  /** True: the faucet accepts it; false: it rejects it; absent: it could not be asked. */
  alive?: boolean;
  error?: string;
}

/**
 * Everything a front end needs, bound to one store, one profile and one surface.
 * Create with `createRekey(options)`.
 */
export interface Rekey extends DeliveryOperations {
  readonly profileName: string;
  readonly surface: Surface;
  /** The faucet URL of this profile. */
  baseUrl(): Promise<string>;
  /**
   * The principal this profile acts as by default, or undefined when it holds no key.
   * @throws RekeyError NOT_FOUND when `actAs` names a principal the store holds no key for.
   */
  activePrincipal(): Promise<Principal | undefined>;

  /** Registers a new operator and stores its key. The recovery code is returned once, never stored. */
  register(input: {
    name?: string;
    email?: string;
    /**
     * Called with the recovery code as soon as the faucet answers, before the key is stored:
     * the code is kept (a file, a terminal) even when the store then fails.
     */
    onRecoveryCode?: (recoveryCode: string) => Promise<void>;
  }): Promise<{
    operatorId: number;
    fingerprint: string;
    recoveryCode: string;
  }>;
  /** Verifies a key with `whoami` and stores it under the principal it belongs to. */
  /**
   * Never overwrites another principal's key: a key for a principal other than the profile's
   * is stored in its own record, and the profile is repointed only with `replace` (else
   * CONFIG_INVALID after storing it). A different key for the same principal is adopted only
   * when the faucet accepts it and rejects the stored one (else CONFIG_INVALID naming both).
   * Runs under the principal's rotation lock.
   * @throws RekeyError UNAUTHORIZED, CONFIG_INVALID, STORE_*, UPSTREAM_*
   */
  login(
    apiKey: string,
    options?: { source?: "login" | "import"; makeActive?: boolean; replace?: boolean },
  ): Promise<{
    principal: Principal;
    identity: Identity;
    fingerprint: string;
    /** The record it is stored in: "operator:12", "agent:7". */
    recordPrincipal: string;
    /** Whether this profile acts as it or manages it (false: stored beside, e.g. another operator's agent). */
    inProfile: boolean;
  }>;
  /** Creates an agent (operator key) and stores its key under that agent. */
  createAgent(input: { name: string; description?: string; budgetLimitSats?: number }): Promise<{
    agentId: number;
    name: string;
    fingerprint: string;
  }>;
  /**
   * Gets a new operator key with the recovery code (starts the 60-minute cooldown). Like a
   * rotation, it is refused (COOLDOWN_ACTIVE, nothing called upstream) while the profile holds
   * the operator's key and the operator is inside a withdrawal cooldown, unless `force`: it
   * would restart the block. Without a key (KEY_LOST) it is never refused for a cooldown.
   */
  recover(recoveryCode: string, options?: { force?: boolean }): Promise<RotationResult>;

  whoami(principal?: Principal): Promise<Identity & { fingerprint: string }>;
  /**
   * The principal's key, cooldown and unfinished rotation, from the store (no faucet call,
   * unless an unfinished rotation must be resolved first). `maxAgeMs` lets a hot status
   * endpoint answer from a store read confirmed at most that long ago (see `ReadOptions`):
   * this process's own rotations still show at once.
   */
  status(principal?: Principal, options?: { maxAgeMs?: number }): Promise<KeyStatus>;
  /** The operator's agents from the faucet, merged with the store's fingerprints and cooldowns. */
  listAgents(): Promise<AgentStatus[]>;
  rotateKey(request: RotateRequest & { dryRun: true }): Promise<RotationPlan>;
  rotateKey(request?: RotateRequest): Promise<RotationResult>;
  rotateKey(request?: RotateRequest): Promise<RotationResult | RotationPlan>;
  /**
   * Runs `run` once per idempotency key for 24 hours: a repeat with the same `requestHash` gets
   * the stored result (`replayed`); another hash is IDEMPOTENCY_KEY_REUSED. The result must be
   * JSON; it carries no transport status (front ends map outcomes to theirs). A run that throws
   * a definite failure is forgotten, so a retry runs again; one whose outcome is unknown stays
   * pending. Kept in the store, so it holds
   * across restarts and replicas. `scope` (e.g. a bearer token's name) gives a caller slots of
   * its own; `maxRecords` then keeps at most that many of the scope's records, oldest dropped.
   * `run` gets a `request_id` recorded (as pending) before it runs: a rotation it starts should
   * use it, so that a retry after a crash asks for that same rotation again and gets it.
   * @throws RekeyError INVALID_INPUT for a malformed key, IDEMPOTENCY_KEY_REUSED, or what `run` throws.
   */
  withIdempotency<T>(
    idempotencyKey: string,
    requestHash: string,
    run: (attempt: { requestId: string }) => Promise<T>,
    options?: { scope?: string; maxRecords?: number },
  ): Promise<{ result: T; replayed: boolean }>;
  /** Asks the faucet about every key this profile's records hold (doctor). */
  checkKeys(): Promise<KeyCheck[]>;
  /**
   * Settles keys kept beside a record by the schema-1 migration: the one the faucet accepts
   * becomes current, the others are dropped; each is audited (doctor --repair).
   */
  settleAlternates(): Promise<KeyCheck[]>;
  /**
   * Removes a principal's record and key from the store, audited with its fingerprint.
   * @throws RekeyError NOT_FOUND (no record), CONFIG_INVALID (a profile uses it; or the faucet
   *   still accepts its key and `confirmLive` is not set: `details.needsConfirmation`),
   *   ROTATION_IN_PROGRESS (an unfinished rotation)
   */
  forget(
    recordPrincipal: string,
    options?: { confirmLive?: boolean },
  ): Promise<{ principal: string; fingerprint: string | undefined; wasAlive: boolean }>;
  /** Resolves every unfinished rotation of the profile (doctor). */
  resolvePending(): Promise<PendingResolution[]>;
  /**
   * The keys of the profile's faucet that sit in rescue files and not in the store (status,
   * doctor). Reads the rescue directory; never a faucet call.
   */
  rescuedKeys(): Promise<RescuedKey[]>;
  /**
   * Acknowledges a recorded key loss of a principal (default: the profile's): the record is
   * removed and the acknowledgement audited. @throws NOT_FOUND when no loss is recorded.
   */
  acknowledgeKeyLost(principal?: Principal): Promise<{ requestId: string; label: string }>;
  /**
   * Stores the key of a rescue file (written when the store refused a key the faucet issued),
   * then removes the file. @throws INVALID_INPUT for a file that is not a rescue file.
   */
  importRescue(path: string): Promise<{ label: string; fingerprint: string }>;
  /** Withdraws (sandbox `amount_sats` stand-in or a BOLT11 invoice): COOLDOWN_ACTIVE inside a cooldown. */
  withdraw(input: { amountSats?: number; invoice?: string; principal?: Principal }): Promise<{
    amountSats: number;
    feeSats: number;
    newBalance: number;
    paymentHash: string;
  }>;
  history(): Promise<AuditEntry[]>;
  verifyHistory(): Promise<AuditVerification>;
  health(): Promise<HealthReport>;
  readonly keyProvider: KeyProvider;
  /** Stops watching the store. Does not close the store (its owner does). */
  close(): Promise<void>;
}

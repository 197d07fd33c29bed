import { createHash, randomBytes } from "node:crypto";
import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  readSync,
  type Stats,
} from "node:fs";
import { type FileHandle, lstat, readdir, rename } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { type Clock, systemClock } from "../clock.js";
import { RekeyError } from "../errors.js";
import { killPoint } from "../testing/kill-points.js";
import { chainAuditEntry } from "./audit-chain.js";
import {
  ClearSealer,
  countClearKeys,
  countKeysSealedUnderOthers,
  explicitKeySource,
  GENERATED_KEY_FILE,
  holdsSealedKeys,
  isSealedBackup,
  type KeyRing,
  keysThatDoNotOpen,
  loadConfiguredMasterKey,
  loadGeneratedKeyFile,
  type MasterKey,
  type MasterKeyEnv,
  newStoreId,
  RecordSealer,
  readKeyFile,
  sealBackup,
} from "./encryption/index.js";
import {
  assertPrivate,
  ensurePrivateDir,
  errnoCode,
  fsyncFd,
  isTempFileFor,
  lowSpaceProblem,
  openNoFollow,
  openNoFollowSync,
  privacyProblem,
  probeWritable,
  removeOrphanTempFiles,
  storeUnavailable,
  syncDir,
  writeAll,
  writeFileAtomic,
} from "./file-io.js";
import { acquireFileLock, FileLockTimeout, type HeldFileLock } from "./file-lock.js";
import { createFileWatcher, type FileWatcher } from "./file-watch.js";
import { deepFreeze, frozenCopy } from "./freeze.js";
import {
  assertWritableAuditEntry,
  assertWritableStoreData,
  auditEntrySchema,
  describeIssues,
  migrateStoreData,
} from "./schema.js";
import {
  type AuditEntry,
  type AuditEventInput,
  type CompareAndSetResult,
  type CredentialStore,
  emptyStoreData,
  type LockOptions,
  type ReadOptions,
  STORE_SCHEMA_VERSION,
  type StoreData,
  type StoreEncryption,
  type StoreHealth,
  type StoreLock,
  type StoreSnapshot,
  type WriteOptions,
} from "./types.js";

/**
 * The default store: files in a private directory.
 *
 * Layout of the directory (0700, files 0600):
 * - `credentials.json`: `{ "version": n, "sealing": { "storeId": id }, "data": StoreData }`.
 *   `version` counts successful writes (compare-and-set compares it); `data.schemaVersion` is
 *   the format of `data`; from schema 3 every key in it is sealed (see `encryption/`), bound
 *   to `storeId`.
 * - `master.key`: the master key, generated on first write when no REKEY_MASTER_KEY,
 *   REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD is set (a copy of `credentials.json`
 *   without it is useless).
 * - `audit.jsonl`: one hash-chained AuditEntry a line, append-only.
 * - `.store.lock`: proper-lockfile's lock held for the few milliseconds of a write.
 * - `locks/<name>-<hash>.lock`: the named rotation locks.
 */

/** The store document, inside the store directory. */
export const CREDENTIALS_FILE = "credentials.json";
/** The append-only, hash-chained audit log, inside the store directory. */
export const AUDIT_FILE = "audit.jsonl";

/** Environment variables the file store's location depends on. */
export interface StoreDirEnv {
  REKEY_HOME?: string | undefined;
  XDG_CONFIG_HOME?: string | undefined;
  HOME?: string | undefined;
}

/**
 * Where the file store lives: `$REKEY_HOME`, else `$XDG_CONFIG_HOME/rekey`, else
 * `~/.config/rekey` (home from `$HOME`, else the OS). Empty variables count as unset.
 * Throws nothing.
 */
export function resolveStoreDir(env: StoreDirEnv): string {
  if (env.REKEY_HOME) return resolve(env.REKEY_HOME);
  if (env.XDG_CONFIG_HOME) return resolve(env.XDG_CONFIG_HOME, "rekey");
  return resolve(env.HOME || homedir(), ".config", "rekey");
}

/** Options of {@link createFileStore}. */
export interface FileStoreOptions {
  /** The store directory; wins over `env`. */
  dir?: string;
  /**
   * Read for REKEY_HOME / XDG_CONFIG_HOME / HOME when `dir` is absent, and for the master key
   * (REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE, REKEY_MASTER_KEY_CMD; none: the store's own
   * `master.key`). Defaults to none (so `~/.config/rekey`): composition roots pass `process.env`.
   */
  env?: StoreDirEnv & MasterKeyEnv;
  /**
   * Further master keys that open (never seal) what the store holds: the old key while
   * `rekeyMaster` moves a store to a new one.
   */
  previousMasterKeys?: readonly MasterKey[];
  /**
   * @internal false writes keys in clear: the baseline of the encryption benchmark, nothing
   * else. A store so written is read by any rekey, which seals it on its next write.
   */
  sealKeys?: boolean;
  /** Ages leftover temp files in `health()`. */
  clock?: Clock;
  /** How long to wait for the store-wide write lock before STORE_UNAVAILABLE. Default 10 s. */
  writeLockWaitMs?: number;
  /** Poll interval of the watch fallback. Default 2 s. */
  pollIntervalMs?: number;
  /** Coalesces bursts of change events. Default 25 ms. */
  debounceMs?: number;
}

const envelopeSchema = z.strictObject({
  version: z.number().int().positive(),
  sealing: z.strictObject({ storeId: z.string().min(1).max(100) }).optional(),
  data: z.unknown(),
});

/** What a missing credentials file reads as. */
const EMPTY_SNAPSHOT: StoreSnapshot = deepFreeze({ version: 0, data: emptyStoreData() });

// Short: a write holds it for milliseconds, and a crashed writer should block others briefly.
const WRITE_LOCK_STALE_MS = 5000;
// A temp file younger than this may be another process's write in flight, not a leftover: a
// writer holds the write lock for milliseconds and loses it after WRITE_LOCK_STALE_MS.
const TEMP_FILE_GRACE_MS = 60_000;

/** Lock names become file names: unsafe characters are replaced and a hash keeps them distinct. */
function lockFileName(name: string): string {
  const readable = name.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
  const digest = createHash("sha256").update(name, "utf8").digest("hex").slice(0, 12);
  return `${readable}-${digest}.lock`;
}

/**
 * A {@link CredentialStore} on the local filesystem, safe across processes.
 *
 * Errors: STORE_UNAVAILABLE (cannot read/write, modes open to others, closed),
 * STORE_CORRUPT (unreadable content: never read as empty, never overwritten),
 * ROTATION_IN_PROGRESS (a named lock's wait elapsed), INTERNAL (asked to write invalid data).
 */
export class FileStore implements CredentialStore {
  readonly kind = "file";
  /**
   * `compareAndSet` takes `WriteOptions.audit`: under the one write lock, the entries are
   * appended to `audit.jsonl` and fsynced while the new `credentials.json` is fsynced, and the
   * file is renamed into place only once both are on disk. A refused compare-and-set appends
   * nothing. The two files cannot change in one step: a write that fails after the append
   * (its fsync or rename fails, or the lock is lost to a stall, STORE_UNAVAILABLE) leaves the
   * entries without the data. The engine's one use is safe with that: the write clears a
   * rotation's journal, and the journal it leaves makes whoever resolves it find the entry and
   * write no second one (`auditOnce`).
   */
  readonly appendsAuditWithWrite = true;
  readonly location: string;
  readonly dir: string;
  readonly credentialsPath: string;
  readonly auditPath: string;
  private readonly clock: Clock;
  private readonly writeLockWaitMs: number;
  private readonly watcher: FileWatcher;
  private readonly heldLocks = new Set<HeldFileLock>();
  private closed = false;
  /** The last parse of credentials.json, the file it came from, and when it was last confirmed. */
  private parsed:
    | {
        identity: string;
        snapshot: StoreSnapshot;
        checkedAt: number;
        fileSchemaVersion: number;
        storeId: string | undefined;
      }
    | undefined;
  /** The master key's file when no source is configured. */
  readonly keyFilePath: string;
  /** The new key of a re-keying to a generated key, until the store is sealed under it. */
  private readonly nextKeyFilePath: string;
  private readonly keyEnv: MasterKeyEnv;
  private readonly previousMasterKeys: readonly MasterKey[];
  private readonly sealKeys: boolean;
  private keyring: KeyRing | undefined;
  /**
   * The identities of the key files {@link keyring} was read from, taken just before: a
   * change (`rekey store rekey-master` in another process) makes the handle read them again.
   */
  private keyFilesSeen: string | undefined;
  /** Seals and opens this store's records (one store id), remembering what it did. */
  private sealer: RecordSealer | undefined;
  /**
   * The audit entry this handle appended last and the log's identity right after (fsynced):
   * while the log keeps that identity, no other process appended or changed it.
   */
  private lastAppended: { entry: AuditEntry; identity: string } | undefined;
  /** Counts this handle's writes: a parse that raced one is not kept. */
  private writes = 0;

  constructor(options: FileStoreOptions = {}) {
    this.dir =
      options.dir === undefined ? resolveStoreDir(options.env ?? {}) : resolve(options.dir);
    this.credentialsPath = join(this.dir, CREDENTIALS_FILE);
    this.auditPath = join(this.dir, AUDIT_FILE);
    this.keyFilePath = join(this.dir, GENERATED_KEY_FILE);
    this.nextKeyFilePath = join(this.dir, `${GENERATED_KEY_FILE}.next`);
    this.keyEnv = options.env ?? {};
    this.previousMasterKeys = options.previousMasterKeys ?? [];
    this.sealKeys = options.sealKeys ?? true;
    this.location = this.credentialsPath;
    this.clock = options.clock ?? systemClock;
    this.writeLockWaitMs = options.writeLockWaitMs ?? 10_000;
    this.watcher = createFileWatcher(this.credentialsPath, {
      debounceMs: options.debounceMs ?? 25,
      pollIntervalMs: options.pollIntervalMs ?? 2000,
    });
  }

  /**
   * The current snapshot; a missing file is the empty store at version 0.
   *
   * @throws RekeyError STORE_CORRUPT (empty, truncated, non-JSON, schema-invalid, or newer
   *   format); STORE_UNAVAILABLE (unreadable, modes open to others).
   */
  async read(options: ReadOptions = {}): Promise<StoreSnapshot> {
    this.assertOpen();
    const cached = this.parsed;
    if (cached !== undefined && options.maxAgeMs !== undefined && options.maxAgeMs > 0) {
      // A clock that went back makes the age negative: confirm then, rather than trust it.
      const age = this.clock.now() - cached.checkedAt;
      if (age >= 0 && age <= options.maxAgeMs) return cached.snapshot;
    }
    return this.readSnapshot();
  }

  /**
   * Writes `data` as version `expectedVersion + 1` if the file is still at `expectedVersion`,
   * under the store-wide lock, atomically.
   *
   * @throws RekeyError STORE_CORRUPT (the current file is unreadable: it is left untouched);
   *   STORE_UNAVAILABLE (cannot lock or write); INTERNAL (`data` does not match the schema).
   */
  async compareAndSet(
    expectedVersion: number,
    data: StoreData,
    options: WriteOptions = {},
  ): Promise<CompareAndSetResult> {
    this.assertOpen();
    const validated = assertWritableStoreData(data);
    await ensurePrivateDir(this.dir);
    // The key exists, durably, before anything is sealed under it. A key is made only for a
    // store that has none yet: one that is sealed and whose key is missing is STORE_LOCKED
    // (from the read), never given a new key that would only stand in the way of the real one.
    if ((await this.loadKeyring(false)) === undefined) {
      await this.readSnapshotWithIdentity(false);
      await this.loadKeyring(true);
    }
    const result = await this.withWriteLock(async (held): Promise<CompareAndSetResult> => {
      const {
        snapshot: current,
        identity,
        fileSchemaVersion,
        storeId,
      } = await this.readSnapshotWithIdentity(false);
      if (current.version !== expectedVersion) return { ok: false, current };
      // Under the write lock, which `rekey-master` holds while it re-keys: the key files now
      // are the ones to seal under (the read above may already have reloaded them).
      this.forgetChangedKeyring();
      const sealer = this.sealerFor(storeId ?? newStoreId(), await this.loadKeyring(true));
      if (fileSchemaVersion < STORE_SCHEMA_VERSION) await this.backUpOlderSchema(sealer);
      // A copy: the caller keeps its own `data` to change as it likes.
      const next = deepFreeze({ version: current.version + 1, data: frozenCopy(validated) });
      // The write lock goes to another process if this one stalls past its staleness (a
      // suspended laptop, a frozen VM). That process may have replaced the file since we read
      // it, perhaps with a new key: writing ours over it would lose that. Checked last thing
      // before the rename; what is left is a stall of seconds inside that one system call.
      const unchanged = () =>
        !held.compromised && currentIdentity(this.credentialsPath) === identity;
      // The sweep of crashed writes' temp files: a synchronous listing (microseconds), made
      // before this write's own temp file exists. It throws nothing.
      this.removeOrphanTempFiles();
      // The entries go to the log while the new file is being fsynced, durably before it is
      // renamed into place (see appendsAuditWithWrite): one wait on the disk for both.
      const entries = options.audit ?? [];
      let appended = false;
      const appendEntries = async () => {
        if (!unchanged()) return; // called off below, before anything is appended
        await this.appendHeld(entries);
        appended = true;
        killPoint("audit.entry-synced");
      };
      let written: boolean;
      try {
        // Not durable: no directory fsync (see writeFileAtomic). A later durable write, whose
        // rename follows this one's in the same directory, makes both durable.
        written = await writeFileAtomic(
          this.credentialsPath,
          serializeSnapshot(next, sealer),
          unchanged,
          {
            durable: options.durable !== false,
            beforeRename: entries.length > 0 ? appendEntries : undefined,
          },
        );
      } finally {
        // Even after a failed write (the rename may have happened): a read with maxAgeMs must
        // not answer from the old parse once this handle has written.
        this.forgetParse();
      }
      if (!written && appended) {
        // Not a conflict: a caller that re-read and wrote again would append the entries twice.
        throw new RekeyError(
          "STORE_UNAVAILABLE",
          `The write lock of ${this.dir} was lost while writing; the audit entries were appended and the data was not written`,
          { hint: "Another process took the store's lock after a stall; retry." },
        );
      }
      if (!written) return { ok: false, current: await this.readSnapshot() };
      // Still under the write lock, the file is the one just renamed into place: keep what was
      // written as its parse, so the next read (the caller's, usually) does not parse it again.
      const writtenIdentity = currentIdentity(this.credentialsPath);
      if (writtenIdentity !== ABSENT) {
        this.parsed = {
          identity: writtenIdentity,
          snapshot: next,
          checkedAt: this.clock.now(),
          fileSchemaVersion: STORE_SCHEMA_VERSION,
          storeId: sealer.storeId,
        };
      }
      return { ok: true, snapshot: next };
    });
    if (result.ok) this.watcher.poke();
    return result;
  }

  /**
   * Takes the named lock across processes. The lease is renewed while this process lives; if
   * it dies, others may take the lock once `max(leaseMs, 2000)` ms pass without renewal, where
   * `leaseMs` is the TAKER's (proper-lockfile judges staleness on the taker's side), so every
   * caller should use the same `leaseMs` for a given name.
   *
   * @throws RekeyError ROTATION_IN_PROGRESS when `waitMs` passes; STORE_UNAVAILABLE when the
   *   lock file cannot be created.
   */
  async lock(name: string, options: LockOptions): Promise<StoreLock> {
    this.assertOpen();
    await ensurePrivateDir(this.dir);
    const locksDir = join(this.dir, "locks");
    // An existing `locks` may be a link planted to make lock files appear elsewhere: checked
    // (lstat) on every lock, created 0700 when missing.
    await ensurePrivateDir(locksDir);
    let held: HeldFileLock;
    try {
      held = await acquireFileLock({
        lockPath: join(locksDir, lockFileName(name)),
        staleMs: options.leaseMs,
        waitMs: options.waitMs,
      });
    } catch (error) {
      if (error instanceof FileLockTimeout) {
        throw new RekeyError("ROTATION_IN_PROGRESS", `Lock "${name}" is held by another rotation`, {
          hint: "Another rotation is running; wait for it to finish and retry.",
        });
      }
      throw storeUnavailable("take the lock in", locksDir, error);
    }
    this.heldLocks.add(held);
    return {
      name,
      release: async () => {
        this.heldLocks.delete(held);
        await held.release();
      },
    };
  }

  /**
   * Appends one chained entry to `audit.jsonl` under the store-wide lock and fsyncs it.
   *
   * @throws RekeyError STORE_CORRUPT (the log's last line is unreadable); STORE_UNAVAILABLE
   *   (cannot lock or write); INTERNAL (the event does not match the audit schema).
   */
  async appendAudit(event: AuditEventInput): Promise<AuditEntry> {
    this.assertOpen();
    await ensurePrivateDir(this.dir);
    return this.withWriteLock(async () => {
      const [entry] = await this.appendHeld([event]);
      return entry as AuditEntry;
    });
  }

  /**
   * Appends `events`, chained in order, to `audit.jsonl` and fsyncs it; the caller holds the
   * store-wide lock. One open for reading the last entry and appending after it, made
   * synchronously, as are the write (into the page cache) and the close: only the fsync waits
   * on the disk and goes through the thread pool (see writeFileAtomic). The fstats are on the
   * open descriptor (an inode in memory, no I/O).
   */
  private async appendHeld(events: readonly AuditEventInput[]): Promise<AuditEntry[]> {
    let fd: number;
    try {
      fd = openNoFollowSync(
        this.auditPath,
        constants.O_RDWR | constants.O_APPEND | constants.O_CREAT,
      );
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("append to", this.auditPath, error);
    }
    try {
      const before = fstatSync(fd, { bigint: true });
      assertPrivate(this.auditPath, before, false);
      // The entry this handle appended last, while the file is the one it left (no other
      // process appended since): the log's tail need not be read again to chain to it.
      const known = this.lastAppended;
      let last =
        known !== undefined && known.identity === fileIdentity(before)
          ? known.entry
          : await this.lastAuditEntryIn(readTailSync(fd, before, AUDIT_TAIL_BYTES));
      const entries: AuditEntry[] = [];
      for (const event of events) {
        const entry = chainAuditEntry(last, event);
        assertWritableAuditEntry(entry);
        entries.push(entry);
        last = entry;
      }
      this.lastAppended = undefined;
      writeAll(fd, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(""));
      await fsyncFd(fd);
      if (last !== undefined) {
        this.lastAppended = {
          entry: last,
          identity: fileIdentity(fstatSync(fd, { bigint: true })),
        };
      }
      return entries;
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("append to", this.auditPath, error);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Proves `audit.jsonl` can take the next entry: its last line is whole, and it opens for
   * appending. A torn last line (a crash mid-append) is copied to `audit.jsonl.torn-<time>`
   * (0600, fsynced) and only then cut from the log, so nothing is deleted; the caller audits
   * the repair. A crash between the two leaves both, and the next call copies it again.
   *
   * @throws RekeyError STORE_CORRUPT (an earlier line is unreadable); STORE_UNAVAILABLE.
   */
  async prepareAudit(): Promise<{ movedAside?: string }> {
    this.assertOpen();
    await ensurePrivateDir(this.dir);
    // The log is still the file this handle's last append left (fsynced, ending in a whole
    // line, opened for appending; same inode, size, times, so same mode): nothing to check.
    const known = this.lastAppended;
    if (known !== undefined && known.identity === currentIdentity(this.auditPath)) return {};
    // The common case without the store's write lock (every rotation asks, and lock traffic
    // slows the readers that share it): a whole last line and a log that opens for appending.
    // An append in flight can look torn from here: the lock decides before anything is moved.
    const tail = await this.readPrivateFileTail(this.auditPath, AUDIT_TAIL_BYTES);
    if (tail === undefined || tail.text.length === 0 || tail.text.endsWith("\n")) {
      await this.assertAppendable();
      return {};
    }
    return this.withWriteLock(async () => {
      const tail = await this.readPrivateFileTail(this.auditPath, AUDIT_TAIL_BYTES);
      let movedAside: string | undefined;
      if (tail !== undefined && tail.text.length > 0 && !tail.text.endsWith("\n")) {
        const cut = tail.text.lastIndexOf("\n");
        if (cut < 0 && !tail.whole) {
          throw new RekeyError("STORE_CORRUPT", `${this.auditPath} ends with an unreadable line`, {
            hint: "Inspect the end of the audit log; rekey will not append after it.",
          });
        }
        const torn = tail.text.slice(cut + 1);
        const tornBytes = Buffer.byteLength(torn, "utf8");
        movedAside = `${this.auditPath}.torn-${new Date(this.clock.now()).toISOString().replace(/[:.]/g, "-")}`;
        await writeFileAtomic(movedAside, torn);
        try {
          const handle = await openNoFollow(this.auditPath, constants.O_WRONLY);
          try {
            const size = (await handle.stat()).size;
            await handle.truncate(size - tornBytes);
            await handle.sync();
          } finally {
            await handle.close();
          }
        } catch (error) {
          if (error instanceof RekeyError) throw error;
          throw storeUnavailable("repair", this.auditPath, error);
        }
      }
      // Whole lines now: the last one must be an entry the next append can chain to.
      await this.readLastAuditEntry();
      await this.assertAppendable();
      return movedAside === undefined ? {} : { movedAside };
    });
  }

  /** The audit log opens for appending (created if missing). */
  private async assertAppendable(): Promise<void> {
    try {
      const handle = await openNoFollow(
        this.auditPath,
        constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
      );
      await handle.close();
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("append to", this.auditPath, error);
    }
  }

  /**
   * Every audit entry, oldest first (not verified: see `verifyAuditChain`).
   *
   * @throws RekeyError STORE_CORRUPT (a line is not an audit entry); STORE_UNAVAILABLE.
   */
  async readAudit(): Promise<AuditEntry[]> {
    this.assertOpen();
    if ((await statOrUndefined(this.auditPath)) === undefined) return [];
    // Under the write lock so that an append in flight is never seen half-written.
    return this.withWriteLock(() => this.readAuditEntries());
  }

  /** Calls `listener` after `credentials.json` changes, by any process. Throws nothing. */
  watch(listener: () => void): () => void {
    if (this.closed) return () => {};
    return this.watcher.add(listener);
  }

  /**
   * Proves a file can be created, fsynced and removed in the store directory, and removes
   * the temp files interrupted writes left behind (see {@link removeOrphanTempFiles}).
   *
   * @throws RekeyError STORE_UNAVAILABLE (read-only, full, not permitted, a link, another
   *   user's, modes open to others).
   */
  async checkWritable(): Promise<void> {
    this.assertOpen();
    await ensurePrivateDir(this.dir);
    await probeWritable(this.dir);
    // A store that cannot seal cannot take a key either: a broken key source (a truncated
    // REKEY_MASTER_KEY, a failing REKEY_MASTER_KEY_CMD) is STORE_LOCKED here, before the faucet
    // issues a key (register) that would otherwise only reach a rescue file. As in
    // compareAndSet, a key is made only for a store that has none yet.
    if ((await this.loadKeyring(false)) === undefined) {
      await this.readSnapshotWithIdentity(false);
      await this.loadKeyring(true);
    }
    await this.withWriteLock(async () => this.removeOrphanTempFiles());
  }

  /**
   * Key-free problems: open modes, unreadable content, leftover temp files, a disk too full for
   * the next write. Throws nothing.
   */
  async health(): Promise<StoreHealth> {
    const problems: string[] = [];
    const dirStats = await storeDirStats(this.dir).catch((error: unknown) => {
      problems.push(error instanceof RekeyError ? error.message : String(error));
      return undefined;
    });
    if (dirStats !== undefined) {
      const dirProblem =
        dirStats.isDirectory() || dirStats.isSymbolicLink()
          ? privacyProblem(this.dir, dirStats, true)
          : `${this.dir} is not a directory`;
      if (dirProblem !== undefined) problems.push(dirProblem);
      for (const path of [this.credentialsPath, this.auditPath]) {
        const fileStats = await statOrUndefined(path);
        const fileProblem = fileStats && privacyProblem(path, fileStats, false);
        if (fileProblem) problems.push(fileProblem);
      }
      if (problems.length === 0) {
        // Every key is opened here: a read leaves them sealed until used, and `doctor` is
        // where a changed or swapped ciphertext must show before a rotation needs the key.
        const readAndOpen = async () =>
          problems.push(...keysThatDoNotOpen((await this.readSnapshot()).data.principals));
        for (const read of [readAndOpen, () => this.readAuditEntries()]) {
          try {
            await read();
          } catch (error) {
            problems.push(error instanceof RekeyError ? error.message : String(error));
          }
        }
      }
      problems.push(...(await this.leftoverTempFiles()));
      const space = await lowSpaceProblem(this.dir, this.credentialsPath);
      if (space !== undefined) problems.push(space);
    }
    if (this.closed) problems.push("the store is closed");
    const encryption = await this.encryptionState().catch(() => undefined);
    if (encryption?.state === "clear") {
      problems.push(
        `${this.credentialsPath} holds ${encryption.clearKeys} key(s) in clear (the next write seals them)`,
      );
    }
    return {
      ok: problems.length === 0,
      kind: this.kind,
      location: this.location,
      problems,
      ...(encryption === undefined ? {} : { encryption }),
    };
  }

  /**
   * Whether every key in the file is sealed, and under which master key. Key-free.
   * @throws RekeyError STORE_UNAVAILABLE (unreadable).
   */
  async encryptionState(): Promise<StoreEncryption> {
    const text = await this.readPrivateFile(this.credentialsPath);
    const keyring = this.keyring;
    const source =
      keyring === undefined
        ? undefined
        : { keyId: keyring.current.id, keySource: keyring.current.source };
    if (text === undefined) return { state: "encrypted", clearKeys: 0, ...source };
    let raw: { data?: { principals?: Record<string, unknown> } } = {};
    try {
      raw = JSON.parse(text) as typeof raw;
    } catch {
      // Unreadable: health reports it as STORE_CORRUPT; nothing to count here.
    }
    const records = Object.values(raw.data?.principals ?? {});
    const clearKeys = countClearKeys(records);
    const underOtherKeys =
      keyring === undefined ? 0 : countKeysSealedUnderOthers(records, keyring.current.id);
    return {
      state: clearKeys === 0 ? "encrypted" : "clear",
      clearKeys,
      ...source,
      ...(underOtherKeys === 0 ? {} : { underOtherKeys }),
    };
  }

  /**
   * The master keys this store seals and opens with: the configured source, else its own
   * `master.key` (created when `create` is set and it is missing). Undefined when there is
   * none and `create` is not set. Once found, kept for the handle's life.
   *
   * @throws RekeyError STORE_LOCKED (a source set but broken: a truncated key file, a failing
   *   command...); STORE_UNAVAILABLE (the key file cannot be created).
   */
  private async loadKeyring(create: true): Promise<KeyRing>;
  private async loadKeyring(create: boolean): Promise<KeyRing | undefined>;
  private async loadKeyring(create: boolean): Promise<KeyRing | undefined> {
    if (this.keyring !== undefined) return this.keyring;
    // Taken before the files are read: a change while they are read is seen next time.
    const seen = this.keyFilesIdentity();
    const configured = await loadConfiguredMasterKey(this.keyEnv);
    // With a source configured, a `master.key` left from before still opens what it sealed:
    // the next write seals everything under the configured key.
    const ownKey = await loadGeneratedKeyFile(this.keyFilePath, create && configured === undefined);
    // A re-keying to a generated key that a crash interrupted: the store may be sealed under it.
    const pendingKey = await readKeyFile(this.nextKeyFilePath);
    const current = configured ?? ownKey;
    if (current === undefined) return undefined;
    const accepted = [current, ...this.previousMasterKeys];
    if (ownKey !== undefined && ownKey.id !== current.id) accepted.push(ownKey);
    if (pendingKey !== undefined && !accepted.some((key) => key.id === pendingKey.id)) {
      accepted.push(pendingKey);
    }
    this.keyring = { current, accepted };
    this.keyFilesSeen = seen;
    return this.keyring;
  }

  /**
   * The identities of master.key, master.key.next and a REKEY_MASTER_KEY_FILE: what
   * `rekey-master` replaces. Two or three synchronous lstat calls (microseconds).
   */
  private keyFilesIdentity(): string {
    const paths = [this.keyFilePath, this.nextKeyFilePath];
    const configuredFile = this.keyEnv.REKEY_MASTER_KEY_FILE;
    if (configuredFile) paths.push(configuredFile);
    return paths.map(currentIdentity).join("|");
  }

  /**
   * Forgets the keyring when its key files changed since it was read, so the next
   * {@link loadKeyring} reads them again. True when it did. A process that kept the key it
   * started with would refuse the store (STORE_LOCKED) once another process re-keyed it, and
   * would seal what it writes under a key the store no longer keeps.
   */
  private forgetChangedKeyring(): boolean {
    if (this.keyring === undefined || this.keyFilesIdentity() === this.keyFilesSeen) return false;
    this.keyring = undefined;
    this.keyFilesSeen = undefined;
    return true;
  }

  /** The sealer of store `storeId` under `keyring`, kept while the store id stays the same. */
  private sealerFor(storeId: string, keyring: KeyRing): RecordSealer {
    if (this.sealer?.storeId !== storeId || this.sealer.keyring !== keyring) {
      this.sealer = this.sealKeys
        ? new RecordSealer(storeId, keyring, this.credentialsPath)
        : new ClearSealer(storeId, keyring, this.credentialsPath);
    }
    return this.sealer;
  }

  /** What a sealed file needs to be opened: the sealer, or STORE_LOCKED without a key. */
  private openerFor(keyring: KeyRing | undefined): (storeId: string) => RecordSealer {
    return (storeId) => {
      if (keyring === undefined) {
        throw new RekeyError(
          "STORE_LOCKED",
          `${this.credentialsPath} is encrypted and no master key was given: REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE and REKEY_MASTER_KEY_CMD are unset and ${this.keyFilePath} does not exist`,
          {
            hint: `Restore ${this.keyFilePath} from where you keep it, or give the store's master key (REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD). Nothing was changed.`,
          },
        );
      }
      return this.sealerFor(storeId, keyring);
    };
  }

  /**
   * Seals every key again under `newKey`, in one atomic rewrite; "generate" makes a new key
   * for the store's own `master.key` (kept as `master.key.next` until the rewrite is done,
   * and accepted meanwhile, so a crash at any point leaves a store that opens; run again, it
   * finishes with the same key).
   *
   * @throws RekeyError CONFIG_INVALID ("generate" with a configured key source);
   *   STORE_LOCKED / STORE_CORRUPT (the store does not open); STORE_UNAVAILABLE.
   */
  async resealUnder(newKey: MasterKey | "generate"): Promise<{
    keyId: string;
    previousKeyId: string | undefined;
    records: number;
    keptAt: string | undefined;
  }> {
    this.assertOpen();
    await ensurePrivateDir(this.dir);
    this.forgetChangedKeyring();
    const old = await this.loadKeyring(false);
    let next: MasterKey;
    if (newKey === "generate") {
      if (explicitKeySource(this.keyEnv) !== undefined) {
        throw new RekeyError(
          "CONFIG_INVALID",
          "--new-key generate is for a store keeping its own master.key; this one takes its key from the environment",
          { hint: "Give the new key: --new-key file:PATH or --new-key env:VARIABLE." },
        );
      }
      const generated = await loadGeneratedKeyFile(this.nextKeyFilePath, true);
      if (generated === undefined) {
        throw new RekeyError("STORE_UNAVAILABLE", `Cannot create ${this.nextKeyFilePath}`);
      }
      next = generated;
    } else {
      next = newKey;
    }
    const keyring: KeyRing = {
      current: next,
      accepted: [next, ...(old?.accepted ?? []).filter((key) => key.id !== next.id)],
    };
    const records = await this.withWriteLock(async () => {
      const read = await this.readPrivateFileWithIdentity(this.credentialsPath);
      if (read === undefined) {
        await this.keepGeneratedKey(newKey);
        return 0;
      }
      const parsed = parseCredentialsDocument(read.text, this.credentialsPath, (storeId) =>
        this.sealerFor(storeId, keyring),
      );
      const sealer = this.sealerFor(parsed.storeId ?? newStoreId(), keyring);
      const snapshot = deepFreeze({
        version: parsed.snapshot.version + 1,
        data: parsed.snapshot.data,
      });
      try {
        await writeFileAtomic(this.credentialsPath, serializeSnapshot(snapshot, sealer));
      } finally {
        this.forgetParse();
      }
      await this.keepGeneratedKey(newKey);
      return Object.keys(snapshot.data.principals).length;
    });
    this.keyring = newKey === "generate" ? { current: next, accepted: [next] } : keyring;
    this.keyFilesSeen = this.keyFilesIdentity();
    this.watcher.poke();
    return {
      keyId: next.id,
      previousKeyId: old?.current.id,
      records,
      keptAt: newKey === "generate" ? this.keyFilePath : undefined,
    };
  }

  /**
   * After a re-keying to a generated key, makes `master.key.next` the store's `master.key`.
   * Only once the store is sealed under it (until then the old key must stay), and still
   * under the write lock: a process writing next sees the new key files, never a store
   * sealed under a key that master.key does not hold yet.
   */
  private async keepGeneratedKey(newKey: MasterKey | "generate"): Promise<void> {
    if (newKey !== "generate") return;
    try {
      await rename(this.nextKeyFilePath, this.keyFilePath);
      await syncDir(this.dir);
    } catch (error) {
      throw storeUnavailable("replace", this.keyFilePath, error);
    }
  }

  /** Stops watching and releases every lock this store holds. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    this.watcher.close();
    const held = [...this.heldLocks];
    this.heldLocks.clear();
    await Promise.all(held.map((lock) => lock.release()));
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new RekeyError("STORE_UNAVAILABLE", `The file store at ${this.dir} is closed`);
    }
  }

  private async withWriteLock<T>(work: (held: HeldFileLock) => Promise<T>): Promise<T> {
    let held: HeldFileLock;
    try {
      held = await acquireFileLock({
        lockPath: join(this.dir, ".store.lock"),
        staleMs: WRITE_LOCK_STALE_MS,
        waitMs: this.writeLockWaitMs,
      });
    } catch (error) {
      if (error instanceof FileLockTimeout) {
        throw new RekeyError("STORE_UNAVAILABLE", `The store at ${this.dir} stayed locked`, {
          hint: "Another process is writing the store; retry shortly.",
        });
      }
      throw storeUnavailable("lock", this.dir, error);
    }
    try {
      return await work(held);
    } finally {
      await held.release();
    }
  }

  /** The file's text, or undefined when it does not exist; checks its and the dir's modes. */
  private async readPrivateFile(path: string): Promise<string | undefined> {
    return (await this.readPrivateFileWithIdentity(path))?.text;
  }

  /** {@link readPrivateFile}, plus the identity of the file that was read. */
  private async readPrivateFileWithIdentity(
    path: string,
  ): Promise<{ text: string; identity: string } | undefined> {
    return this.withPrivateFile(path, async (handle, stats) => ({
      text: await handle.readFile("utf8"),
      identity: fileIdentity(stats),
    }));
  }

  /**
   * Opens a file of the store for reading after checking the directory's mode and the opened
   * file's own (a path check could race an atomic replace), and hands it to `read`.
   * Undefined when the directory or the file does not exist.
   * @throws RekeyError STORE_UNAVAILABLE for open modes or a failed open/read.
   */
  private async withPrivateFile<T>(
    path: string,
    read: (handle: FileHandle, stats: BigIntStats) => Promise<T>,
  ): Promise<T | undefined> {
    const dirStats = await storeDirStats(this.dir);
    if (dirStats === undefined) return undefined;
    assertPrivate(this.dir, dirStats, true);
    let handle: FileHandle;
    try {
      handle = await openNoFollow(path, constants.O_RDONLY);
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      if (errnoCode(error) === "ENOENT") return undefined;
      throw storeUnavailable("open", path, error);
    }
    try {
      const stats = await handle.stat({ bigint: true });
      assertPrivate(path, stats, false);
      return await read(handle, stats);
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("read", path, error);
    } finally {
      await handle.close();
    }
  }

  /**
   * Reads and parses credentials.json, or hands back the last parse when the file is the same
   * one: every write replaces the file by rename (a new inode), and an edit in place changes its
   * size or times. Status endpoints read the store on every request; this turns those reads
   * into one stat call. The snapshot is deep-frozen, so it is shared rather than copied.
   */
  private async readSnapshot(): Promise<StoreSnapshot> {
    return (await this.readSnapshotWithIdentity()).snapshot;
  }

  /**
   * The current snapshot and the identity of the file it came from ("absent" for none). A file
   * of an older schema is migrated on disk first (backup kept) when `migrate` is set; callers
   * already holding the write lock pass false and write the migrated data themselves.
   */
  private async readSnapshotWithIdentity(migrate = true): Promise<{
    snapshot: StoreSnapshot;
    identity: string;
    fileSchemaVersion: number;
    storeId: string | undefined;
  }> {
    const cached = this.parsed;
    if (cached) {
      // A synchronous stat of one local file takes microseconds; the async one hops through
      // libuv's thread pool and costs ten times more, which a status endpoint pays per request.
      // lstat: a link put in the file's place has an identity of its own, and is refused below.
      const fileStats = lstatSync(this.credentialsPath, { bigint: true, throwIfNoEntry: false });
      if (fileStats !== undefined && fileIdentity(fileStats) === cached.identity) {
        // The directory is checked on every read too, as a fresh parse would.
        const dirStats = lstatSync(this.dir, { throwIfNoEntry: false });
        if (dirStats !== undefined) assertPrivate(this.dir, dirStats, true);
        assertPrivate(this.credentialsPath, fileStats, false);
        cached.checkedAt = this.clock.now();
        return {
          snapshot: cached.snapshot,
          identity: cached.identity,
          fileSchemaVersion: cached.fileSchemaVersion,
          storeId: cached.storeId,
        };
      }
    }
    const writesBefore = this.writes;
    const read = await this.readPrivateFileWithIdentity(this.credentialsPath);
    if (read === undefined) {
      this.parsed = undefined;
      return {
        snapshot: EMPTY_SNAPSHOT,
        identity: ABSENT,
        fileSchemaVersion: STORE_SCHEMA_VERSION,
        storeId: undefined,
      };
    }
    const parsed = await this.parseWithCurrentKeys(read.text);
    if (migrate && parsed.fileSchemaVersion < STORE_SCHEMA_VERSION) {
      const migrated = await this.migrateOnDisk().catch(() => false);
      // Migrated (by us or a racing process): read the new file. A store that cannot be
      // written (read-only) is still readable, migrated in memory.
      if (migrated) return this.readSnapshotWithIdentity(false);
    }
    const snapshot = deepFreeze(parsed.snapshot);
    // A write by this handle that finished while the file was read may have replaced it.
    if (this.writes === writesBefore) {
      this.parsed = {
        identity: read.identity,
        snapshot,
        checkedAt: this.clock.now(),
        fileSchemaVersion: parsed.fileSchemaVersion,
        storeId: parsed.storeId,
      };
    }
    return {
      snapshot,
      identity: read.identity,
      fileSchemaVersion: parsed.fileSchemaVersion,
      storeId: parsed.storeId,
    };
  }

  /**
   * Parses credentials.json with the handle's keyring; when that refuses it as STORE_LOCKED
   * and the key files changed since they were read (a re-keying by another process), once
   * more with the keys they hold now. Only then is the store locked.
   */
  private async parseWithCurrentKeys(
    text: string,
  ): Promise<ReturnType<typeof parseCredentialsDocument>> {
    const parse = async () =>
      parseCredentialsDocument(
        text,
        this.credentialsPath,
        this.openerFor(await this.loadKeyring(false)),
      );
    try {
      return await parse();
    } catch (error) {
      if (!(error instanceof RekeyError && error.code === "STORE_LOCKED")) throw error;
      if (!this.forgetChangedKeyring()) throw error;
      return parse();
    }
  }

  /**
   * Rewrites a credentials file of an older schema in the current one, under the write lock,
   * once: several processes opening the store together migrate it one time. The original is
   * kept beside it (`credentials.schema-N.json`, 0600). True when the file is current after.
   */
  private async migrateOnDisk(): Promise<boolean> {
    const keyring = await this.loadKeyring(true);
    const done = await this.withWriteLock(async (held) => {
      const read = await this.readPrivateFileWithIdentity(this.credentialsPath);
      if (read === undefined) return true;
      const parsed = parseCredentialsDocument(
        read.text,
        this.credentialsPath,
        this.openerFor(keyring),
      );
      if (parsed.fileSchemaVersion >= STORE_SCHEMA_VERSION) return true;
      const sealer = this.sealerFor(newStoreId(), keyring);
      await this.backUpOlderSchema(sealer, read.text, parsed.fileSchemaVersion);
      const next = { version: parsed.snapshot.version + 1, data: parsed.snapshot.data };
      const unchanged = () =>
        !held.compromised && currentIdentity(this.credentialsPath) === read.identity;
      try {
        return await writeFileAtomic(
          this.credentialsPath,
          serializeSnapshot(next, sealer),
          unchanged,
        );
      } finally {
        this.forgetParse();
      }
    });
    if (done) this.watcher.poke();
    return done;
  }

  /**
   * Keeps the current file as `credentials.schema-N.json`, sealed (see `sealBackup`), before it
   * is first written in a newer schema (an existing backup of the same original is kept), and
   * seals the backups earlier migrations left in clear. Caller holds the write lock.
   */
  private async backUpOlderSchema(
    sealer: RecordSealer,
    text?: string,
    schemaVersion?: number,
  ): Promise<void> {
    await this.sealClearBackups(sealer);
    let original = text;
    let version = schemaVersion;
    if (original === undefined || version === undefined) {
      const read = await this.readPrivateFile(this.credentialsPath);
      if (read === undefined) return;
      version = parseCredentialsDocument(read, this.credentialsPath).fileSchemaVersion;
      original = read;
    }
    if (version >= STORE_SCHEMA_VERSION) return;
    // A backup of the same original (an earlier attempt's) is kept; any other file by that name
    // (an older backup, something restored) is never replaced nor taken for this one.
    let name = `credentials.schema-${version}.json`;
    const existing = await this.readPrivateFile(join(this.dir, name)).catch(() => null);
    if (existing === original) return;
    if (existing !== undefined) {
      name = `credentials.schema-${version}.${randomBytes(4).toString("hex")}.json`;
    }
    await writeFileAtomic(
      join(this.dir, name),
      sealBackup(original, sealer.keyring.current, sealer.storeId, name),
      () => true,
    );
  }

  /**
   * Seals, in place, backups of older schemas that hold keys in clear (an earlier rekey's
   * migration kept `credentials.schema-1.json` as it was). Caller holds the write lock.
   */
  private async sealClearBackups(sealer: RecordSealer): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!/^credentials\.schema-\d+(\.[0-9a-f]{8})?\.json$/.test(name)) continue;
      const path = join(this.dir, name);
      const text = await this.readPrivateFile(path).catch(() => undefined);
      if (text === undefined || isSealedBackup(text) || !isStoreDocument(text)) continue;
      await writeFileAtomic(
        path,
        sealBackup(text, sealer.keyring.current, sealer.storeId, name),
        () => true,
      );
    }
  }

  private forgetParse(): void {
    this.parsed = undefined;
    this.writes += 1;
  }

  private async readAuditEntries(): Promise<AuditEntry[]> {
    const text = await this.readPrivateFile(this.auditPath);
    return text === undefined ? [] : parseAuditLines(text, this.auditPath);
  }

  /**
   * The last entry, for chaining the next one. Reads only the end of the log, so an append
   * costs the same however long the log has grown; `readAudit` and `health` check it whole.
   */
  private async readLastAuditEntry(): Promise<AuditEntry | undefined> {
    const tail = await this.readPrivateFileTail(this.auditPath, AUDIT_TAIL_BYTES);
    return this.lastAuditEntryIn(tail);
  }

  private async lastAuditEntryIn(
    tail: { text: string; whole: boolean } | undefined,
  ): Promise<AuditEntry | undefined> {
    if (tail === undefined || tail.text.length === 0) return undefined;
    if (!tail.text.endsWith("\n")) {
      throw new RekeyError("STORE_CORRUPT", `${this.auditPath} ends with a torn line`, {
        hint: "Inspect the last line of the audit log; rekey will not append after it.",
      });
    }
    const start = tail.text.lastIndexOf("\n", tail.text.length - 2) + 1;
    if (start === 0 && !tail.whole) {
      // One line longer than the tail: no entry is that long, so read it all and let the
      // parser say what is wrong.
      const text = (await this.readPrivateFile(this.auditPath)) ?? "";
      return parseAuditLines(text, this.auditPath).at(-1);
    }
    return parseAuditLines(tail.text.slice(start), `${this.auditPath} (last line)`).at(-1);
  }

  /** The last `maxBytes` of a private file, and whether that is all of it. */
  private async readPrivateFileTail(
    path: string,
    maxBytes: number,
  ): Promise<{ text: string; whole: boolean } | undefined> {
    return this.withPrivateFile(path, (handle, stats) => readTail(handle, stats, maxBytes));
  }

  /** Removes temp files of interrupted writes, past their grace. Call under the write lock. */
  private removeOrphanTempFiles(): void {
    removeOrphanTempFiles(
      this.dir,
      (name) => this.isTempFile(name),
      this.clock.now(),
      TEMP_FILE_GRACE_MS,
    );
  }

  private isTempFile(name: string): boolean {
    return isTempFileFor(this.credentialsPath, name) || name.startsWith(".rekey-writable.");
  }

  private async leftoverTempFiles(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const problems: string[] = [];
    for (const name of names) {
      if (!this.isTempFile(name)) continue;
      const stats = await statOrUndefined(join(this.dir, name));
      if (stats !== undefined && this.clock.now() - stats.mtimeMs > TEMP_FILE_GRACE_MS) {
        problems.push(
          `leftover temp file ${join(this.dir, name)} (an interrupted write; the next write removes it)`,
        );
      }
    }
    return problems;
  }
}

/**
 * The UTF-8 bytes of the `"id":{...}` text of each entry written before, by record (not a
 * principal record: those are sealed, and their sealer remembers their bytes): a record is
 * frozen, so its text never changes, and it sits under one id.
 */
const entryBytes = new WeakMap<object, { id: string; bytes: Buffer }>();

function entryBuffer(id: string, record: unknown): Buffer {
  if (typeof record !== "object" || record === null || !Object.isFrozen(record)) {
    return Buffer.from(`${JSON.stringify(id)}:${JSON.stringify(record)}`, "utf8");
  }
  const known = entryBytes.get(record);
  if (known?.id === id) return known.bytes;
  const bytes = Buffer.from(`${JSON.stringify(id)}:${JSON.stringify(record)}`, "utf8");
  entryBytes.set(record, { id, bytes });
  return bytes;
}

const COMMA = Buffer.from(",");
const OPEN = Buffer.from("{");
const CLOSE = Buffer.from("}");

/**
 * The bytes of `credentials.json` for a snapshot, every key sealed by `sealer`: what
 * `JSON.stringify` gives, built from each entry's remembered bytes, so a write seals,
 * serialises and encodes only the records that changed (one agent's rotation among a thousand
 * seals and stringifies one record, then copies the thousand entries' bytes once). Joining a
 * thousand texts into one string and encoding it cost more than the rest of the write together
 * (a string built by `+=` is flattened, then encoded).
 */
function serializeSnapshot(snapshot: StoreSnapshot, sealer: RecordSealer): Buffer {
  const sealing = JSON.stringify({ storeId: sealer.storeId });
  const parts: Buffer[] = [
    Buffer.from(`{"version":${snapshot.version},"sealing":${sealing},"data":{`),
  ];
  let first = true;
  for (const [name, value] of Object.entries(snapshot.data)) {
    if (value === undefined) continue;
    parts.push(Buffer.from(`${first ? "" : ","}${JSON.stringify(name)}:`));
    first = false;
    if (name === "principals" || name === "idempotency") {
      const map = value as Record<string, unknown>;
      parts.push(OPEN);
      let firstEntry = true;
      for (const id in map) {
        const record = map[id];
        if (record === undefined) continue;
        if (!firstEntry) parts.push(COMMA);
        firstEntry = false;
        parts.push(
          name === "principals"
            ? sealer.sealedEntryBytes(id, record as object)
            : entryBuffer(id, record),
        );
      }
      parts.push(CLOSE);
    } else {
      parts.push(Buffer.from(JSON.stringify(value)));
    }
  }
  parts.push(Buffer.from("}}\n"));
  return Buffer.concat(parts);
}

/** True when `text` is a store file (of any schema): a backup holding keys. Throws nothing. */
function isStoreDocument(text: string): boolean {
  try {
    return envelopeSchema.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
}

/** How much of the audit log's end an append reads: far more than one entry. */
const AUDIT_TAIL_BYTES = 64 * 1024;

/** Which file, and which version of it: device, inode, size and change times in nanoseconds. */
function fileIdentity(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

/** The last `maxBytes` of an open file of `stats`'s size, and whether that is all of it. */
async function readTail(
  handle: FileHandle,
  stats: BigIntStats,
  maxBytes: number,
): Promise<{ text: string; whole: boolean }> {
  const size = Number(stats.size);
  const length = Math.min(size, maxBytes);
  const buffer = Buffer.alloc(length);
  await handle.read(buffer, 0, length, size - length);
  // A multi-byte character cut at the start is garbled, but that part precedes the last line
  // and is thrown away.
  return { text: buffer.toString("utf8"), whole: length === size };
}

/** {@link readTail} on a descriptor, synchronously (a tail of a file in the page cache). */
function readTailSync(
  fd: number,
  stats: BigIntStats,
  maxBytes: number,
): { text: string; whole: boolean } {
  const size = Number(stats.size);
  const length = Math.min(size, maxBytes);
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const read = readSync(fd, buffer, done, length - done, size - length + done);
    if (read === 0) break;
    done += read;
  }
  return { text: buffer.subarray(0, done).toString("utf8"), whole: length === size };
}

/** The identity of the file a read would see now. */
const ABSENT = "absent";
function currentIdentity(path: string): string {
  const stats = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  return stats === undefined ? ABSENT : fileIdentity(stats);
}

/** The path's own stats (a link is reported as a link, not followed), or undefined. */
async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch {
    return undefined;
  }
}

/**
 * The store directory's stats, or undefined when it does not exist yet.
 * @throws RekeyError STORE_UNAVAILABLE when the path cannot be a directory at all (a parent
 *   is a regular file, no permission): that is not an empty store.
 */
async function storeDirStats(dir: string): Promise<Stats | undefined> {
  try {
    return await lstat(dir);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw storeUnavailable("use the store directory", dir, error);
  }
}

/**
 * Parses `credentials.json` text.
 *
 * @throws RekeyError STORE_CORRUPT naming the file and where it is wrong, never its content.
 */
export function parseCredentials(
  text: string,
  path: string,
  opener?: (storeId: string) => RecordSealer,
): StoreSnapshot {
  return parseCredentialsDocument(text, path, opener).snapshot;
}

/**
 * Parses `credentials.json` text, opening its sealed keys with the sealer `opener` gives for
 * the file's store id, migrating an older schema in memory, and says which schema version the
 * file itself holds and its store id. The snapshot comes back frozen.
 *
 * @throws RekeyError STORE_CORRUPT naming the file and where it is wrong, never its content
 *   (a sealed key that does not decrypt too); STORE_LOCKED (sealed, and no key or the wrong
 *   one: from `opener` or the sealer).
 */
export function parseCredentialsDocument(
  text: string,
  path: string,
  opener?: (storeId: string) => RecordSealer,
): { snapshot: StoreSnapshot; fileSchemaVersion: number; storeId: string | undefined } {
  const corrupt = (what: string) =>
    new RekeyError("STORE_CORRUPT", `${path} ${what}`, {
      hint: "Restore it from a backup; rekey will not read it as empty or overwrite it.",
      details: { path },
    });
  if (text.trim().length === 0) throw corrupt("is empty");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // No cause: V8's JSON error quotes the text around the fault, which may be a key.
    throw corrupt("is not valid JSON (truncated or edited?)");
  }
  const envelope = envelopeSchema.safeParse(raw);
  if (!envelope.success) {
    throw corrupt(`is not a rekey store file at ${describeIssues(envelope.error)}`);
  }
  const stated = (envelope.data.data as { schemaVersion?: unknown } | null)?.schemaVersion;
  const fileSchemaVersion = typeof stated === "number" ? stated : STORE_SCHEMA_VERSION;
  const storeId = envelope.data.sealing?.storeId;
  const document = envelope.data.data;
  let sealer: RecordSealer | undefined;
  if (fileSchemaVersion >= 3 && fileSchemaVersion <= STORE_SCHEMA_VERSION) {
    if (storeId === undefined) throw corrupt("is encrypted (schema 3) but names no store id");
    const principals = (document as { principals?: unknown }).principals;
    if (
      typeof principals === "object" &&
      principals !== null &&
      !Array.isArray(principals) &&
      holdsSealedKeys(Object.values(principals))
    ) {
      sealer = opener?.(storeId);
      if (sealer === undefined) {
        throw new RekeyError("STORE_LOCKED", `${path} is encrypted and no master key was given`);
      }
    }
  }
  // Checked with its keys still sealed (a sealed key is a non-empty string like a clear one),
  // then each key left sealed, as data, until something opens it: a read decrypts nothing.
  const migrated = migrateStoreData(document, path);
  if (sealer !== undefined) {
    const principals = migrated.principals as unknown as Record<string, Record<string, unknown>>;
    const stored = (document as { principals: Record<string, Record<string, unknown>> }).principals;
    for (const id in principals) {
      const record = principals[id];
      if (record !== undefined) sealer.leaveSealed(id, record, stored[id]);
    }
  }
  const data = deepFreeze(migrated);
  return {
    snapshot: { version: envelope.data.version, data },
    fileSchemaVersion,
    storeId,
  };
}

/**
 * Parses `audit.jsonl` text (a trailing torn line is corrupt too).
 *
 * @throws RekeyError STORE_CORRUPT naming the line.
 */
export function parseAuditLines(text: string, path: string): AuditEntry[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line, index) => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new RekeyError("STORE_CORRUPT", `${path} line ${index + 1} is not valid JSON`);
    }
    const parsed = auditEntrySchema.safeParse(raw);
    if (!parsed.success) {
      throw new RekeyError(
        "STORE_CORRUPT",
        `${path} line ${index + 1} is not an audit entry at ${describeIssues(parsed.error)}`,
      );
    }
    return parsed.data as AuditEntry;
  });
}

/**
 * Creates a {@link FileStore}. Nothing touches the disk until the first call.
 * Throws nothing.
 */
export function createFileStore(options: FileStoreOptions = {}): FileStore {
  return new FileStore(options);
}

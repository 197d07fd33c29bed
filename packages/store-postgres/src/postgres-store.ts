import { performance } from "node:perf_hooks";
import {
  type AuditEntry,
  type CredentialStore,
  type DeepReadonly,
  type MasterKey,
  type PrincipalRecord,
  RekeyError,
  type StoreData,
} from "@rekey/core";
import {
  type AuditEventInput,
  assertWritableAuditEntry,
  assertWritableStoreData,
  auditEntrySchema,
  ClearSealer,
  type CompareAndSetResult,
  chainAuditEntry,
  deepFreeze,
  describeIssues,
  emptyStoreData,
  frozenCopy,
  keysThatDoNotOpen,
  type LockOptions,
  type MasterKeyEnv,
  migrateStoreData,
  type ReadOptions,
  RecordSealer,
  type StoreEncryption,
  type StoreHealth,
  type StoreLock,
  type StoreSnapshot,
  type WriteOptions,
} from "@rekey/core/store-kit";
import pg from "pg";
import { errorCodeOf, parsePostgresUrl, storeUnavailable } from "./connection.js";
import { connectionBudget } from "./connection-budget.js";
import {
  assembleSnapshot,
  diffDocument,
  metaOf,
  type ReadRow,
  type RowChange,
  type RowSnapshot,
} from "./document-rows.js";
import { LockSession } from "./locks.js";
import {
  openRowSealer,
  readMigrationBackup,
  recordSealedUnder,
  requireKeySource,
  rowEncryption,
  sealRows,
  sealRowsOnOpen,
} from "./row-sealing.js";
import {
  auditChainMoved,
  oneStatementWrite,
  type RekeySql,
  sqlFor,
  WRITE_CONFLICT,
  type WriteShape,
} from "./sql.js";

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE[?schema=NAME&sslmode=...]`. Parts left out
   * come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and ~/.pgpass, as with libpq.
   */
  url: string;
  /** Schema for rekey's tables, created on first use. Default: the URL's `schema`, else "rekey". */
  schema?: string;
  /**
   * The most connections this handle opens, all kinds together: one lock session, one LISTEN
   * connection (while watching), the rest pooled for reads and writes. From 3; default the URL's
   * `connections`, else 5. See connection-budget.ts.
   */
  maxConnections?: number;
  /**
   * Give up connecting, or waiting for a connection of the budget (then STORE_BUSY), after this
   * long. Default 5000 ms.
   */
  connectTimeoutMs?: number;
  /** Give up on one query after this long (lock waits excepted). Default 15000 ms. */
  queryTimeoutMs?: number;
  /**
   * The master key's source (REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD):
   * required, a PostgreSQL store has no key file of its own. Composition roots pass
   * `process.env`.
   */
  env?: MasterKeyEnv;
  /** Further master keys that open (never seal) rows: the old key while re-keying. */
  previousMasterKeys?: readonly MasterKey[];
  /**
   * @internal false writes keys in clear (and seals nothing on open): the baseline of the
   * encryption benchmark, nothing else. Rows so written are sealed by the next store opened
   * without it.
   */
  sealKeys?: boolean;
}

const EMPTY_SNAPSHOT: RowSnapshot = {
  version: 0,
  data: deepFreeze(emptyStoreData()),
  rows: { metaVersion: 0, principals: new Map(), idempotency: new Map() },
};

/** How many recent snapshots a handle keeps to write back against (per-row compare-and-set). */
const KEPT_SNAPSHOTS = 16;
/** Tombstones of deleted rows are purged this many versions after the delete. */
const TOMBSTONE_VERSIONS = 1000;

/**
 * Begins a transaction whose commit does not wait for its WAL to reach the disk. A crash may
 * lose it (the rows stay as the commit before left them), never half-apply it; and the WAL is
 * one sequence, so the next durable commit of any session flushes this one first.
 */
const ASYNCHRONOUS_BEGIN = "BEGIN; SET LOCAL synchronous_commit = off";

/** Writes of at most this many rows go in one statement (see `writeChanges`). */
const ONE_STATEMENT_ROWS = 8;

interface RowsByKind {
  updates: RowChange[];
  inserts: RowChange[];
}

/** A write that lost a compare-and-set on some row: rolled back, reported as a conflict. */
class WriteConflict extends Error {}

/**
 * A credential store in PostgreSQL, for fleets: every process on every host that opens the
 * same database and schema shares one store.
 *
 * - The store document is kept as rows: one per principal record (`principals`), one per
 *   idempotency record (`idempotency`), and one for the profiles and the store's version
 *   (`store_meta`). A write changes only the rows that differ from the snapshot it was based
 *   on, each by compare-and-set on its row version, in one transaction: rotating one agent
 *   never rewrites or conflicts with another. A schema-1 store (one `credentials` row) is
 *   migrated on first open and its table kept as `credentials_schema_1`.
 * - The audit log is a table (`audit_log`); appends are serialised by a table lock, so the
 *   hash chain stays whole whoever appends.
 * - Locks are session advisory locks, all of a handle's on one session (see locks.ts). A
 *   holder that dies loses them as its connection closes; one that hangs loses them after
 *   `leaseMs`, the session's `idle_session_timeout` while a timer keeps it busy.
 * - Connections are bounded by one budget (`maxConnections`, see connection-budget.ts).
 * - `watch` LISTENs on the schema's channel; a trigger NOTIFYs on every write by anyone.
 *
 * Tables are created on first use when missing (needs CREATE on the database or schema);
 * a user without that right can use tables that an owner created.
 */
export class PostgresStore implements CredentialStore {
  readonly kind = "postgres";
  /** `compareAndSet` appends `WriteOptions.audit` in the same statement or transaction. */
  readonly appendsAuditWithWrite = true;
  readonly location: string;
  private readonly connectionString: string;
  private readonly sql: RekeySql;
  private readonly pool: pg.Pool;
  /** Every lock of this handle, on one session of its own: never the data pool, whose
   * connections a holder needs while waiters wait. */
  private readonly locks: LockSession;
  private readonly connectTimeoutMs: number;
  private setUp: Promise<void> | undefined;
  private readonly keyEnv: MasterKeyEnv;
  private readonly previousMasterKeys: readonly MasterKey[];
  private readonly sealKeys: boolean;
  /** Seals and opens keys of rows; set once the tables are set up. */
  private sealer: RecordSealer | undefined;
  /** The newest snapshot this handle has seen, and when it was last confirmed current. */
  private latest: { snapshot: RowSnapshot; confirmedAt: number } | undefined;
  /** Recent snapshots by version, with their row versions, for compare-and-set. */
  private readonly snapshots = new Map<number, RowSnapshot>();
  private readonly listeners = new Set<() => void>();
  private listenClient: pg.Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  /** The highest version listeners were told about: one write, one notification. */
  private notifiedVersion = -1;
  /** The text of each one-statement write by its prepared statement's name. */
  private readonly writeStatements = new Map<string, string>();
  /** The snapshot this handle's last write left (see `journaledByThisHandle`). */
  private lastWritten: RowSnapshot | undefined;
  /** The audit entry this handle committed last: the next append tries to chain to it directly. */
  private lastAppended: AuditEntry | undefined;
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    const target = parsePostgresUrl(options.url, options.schema);
    this.keyEnv = options.env ?? {};
    this.previousMasterKeys = options.previousMasterKeys ?? [];
    this.sealKeys = options.sealKeys ?? true;
    this.location = target.location;
    this.connectionString = target.connectionString;
    this.sql = sqlFor(target.schema);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    const queryTimeoutMs = options.queryTimeoutMs ?? 15_000;
    const budget = connectionBudget(options.maxConnections ?? target.connections);
    this.pool = new pg.Pool({
      connectionString: this.connectionString,
      max: budget.data,
      // Also how long a query waits for a pooled connection: past it, STORE_BUSY.
      connectionTimeoutMillis: this.connectTimeoutMs,
      query_timeout: queryTimeoutMs,
      idleTimeoutMillis: 10_000,
      // A CLI run must be able to exit while idle connections linger.
      allowExitOnIdle: true,
    });
    this.locks = new LockSession({
      connectionString: this.connectionString,
      location: this.location,
      namespace: this.sql.lockNamespace,
      connectTimeoutMs: this.connectTimeoutMs,
      queryTimeoutMs,
    });
    // An idle pooled connection that breaks (server restart) is dropped; the next query
    // opens a new one. Without a handler the error would crash the process.
    this.pool.on("error", () => {});
    // Refused at once, not at the first query: a fleet host without the key must not start.
    requireKeySource(this.keyEnv);
  }

  /**
   * @throws RekeyError STORE_UNAVAILABLE (cannot connect or query); STORE_CORRUPT (the row does
   *   not hold a store document, or was written by a newer rekey).
   */
  async read(options: ReadOptions = {}): Promise<StoreSnapshot> {
    this.assertOpen();
    const latest = this.latest;
    const maxAgeMs = options.maxAgeMs ?? 0;
    if (maxAgeMs > 0 && latest && performance.now() - latest.confirmedAt <= maxAgeMs) {
      return publicSnapshot(latest.snapshot);
    }
    await this.ensureSetUp();
    const askedAt = performance.now();
    const known = latest?.snapshot.version ?? -1;
    const { rows } = await this.query("read", this.sql.read, [known], "rekey_read");
    const snapshot = this.snapshotOfRead(rows[0] as ReadRow | undefined, latest?.snapshot);
    this.remember(snapshot, askedAt);
    return publicSnapshot(snapshot);
  }

  /**
   * Writes the rows of `data` that differ from the snapshot at `expectedVersion` (which this
   * handle must have read recently), each only if its row is still at the version read;
   * with `options.audit`, appends those entries in the same transaction (all or nothing: a
   * refused compare-and-set appends nothing).
   *
   * @throws RekeyError INTERNAL when `data` does not match the store schema; STORE_UNAVAILABLE;
   *   STORE_CORRUPT (while reading the current snapshot after a conflict).
   */
  async compareAndSet(
    expectedVersion: number,
    data: StoreData,
    options: WriteOptions = {},
  ): Promise<CompareAndSetResult> {
    this.assertOpen();
    // A frozen copy, sharing the records the caller's draft shares with a snapshot: the
    // stored snapshot is never the caller's object.
    const validated = frozenCopy(assertWritableStoreData(data)) as StoreData;
    await this.ensureSetUp();
    let base = expectedVersion === 0 ? EMPTY_SNAPSHOT : this.snapshots.get(expectedVersion);
    if (base === undefined) {
      // A version this handle did not read (or long ago): when the store is still at it, the
      // current rows are the base; otherwise it is a conflict like any other.
      const current = await this.read();
      base = this.snapshots.get(expectedVersion);
      if (base === undefined) return { ok: false, current };
    }
    const changes = diffDocument(
      expectedVersion === 0 ? undefined : base,
      validated,
      this.rowSealer(),
    );
    const writtenAt = performance.now();
    const audit = options.audit ?? [];
    let version: number;
    try {
      version = await this.writeChanges(
        expectedVersion,
        base,
        changes,
        options.durable !== false,
        audit,
      );
    } catch (error) {
      if (error instanceof WriteConflict) return { ok: false, current: await this.read() };
      throw error;
    }
    const written = withWrittenKeysSealed(validated, changes, this.rowSealer());
    const snapshot = afterWrite(base, version, written, changes);
    this.lastWritten = snapshot;
    this.remember(snapshot, writtenAt);
    this.notify(snapshot.version);
    return { ok: true, snapshot: publicSnapshot(snapshot) };
  }

  /**
   * Writes `changes` (and appends `audit`): in one statement (one round trip) when the store
   * exists and the write is small, as every write of a rotation is, and any entry to append is
   * one that chains to the entry this handle appended last; otherwise in a transaction.
   */
  private async writeChanges(
    expectedVersion: number,
    base: RowSnapshot,
    changes: ReturnType<typeof diffDocument>,
    durable: boolean,
    audit: readonly AuditEventInput[],
  ): Promise<number> {
    const rows = changes.principals.length + changes.idempotency.length;
    // As in appendAudit: the entry appended last is taken (a racing append of this handle then
    // takes the locked path), and put back only by a write that appended after it.
    const known = audit.length > 0 ? this.lastAppended : undefined;
    if (audit.length > 0) this.lastAppended = undefined;
    const [only] = audit;
    const entry =
      audit.length === 1 && only !== undefined && known !== undefined
        ? chainAuditEntry(known, only)
        : undefined;
    if (
      expectedVersion === 0 ||
      rows > ONE_STATEMENT_ROWS ||
      (audit.length > 0 && entry === undefined)
    ) {
      return this.writeInTransaction(expectedVersion, base, changes, durable, audit);
    }
    if (entry !== undefined) assertWritableAuditEntry(entry);
    const [principals, idempotency] = [changes.principals, changes.idempotency].map((list) => ({
      updates: list.filter((change) => change.baseVersion !== undefined),
      inserts: list.filter((change) => change.baseVersion === undefined),
    })) as [RowsByKind, RowsByKind];
    const shape: WriteShape = {
      meta: changes.meta !== undefined,
      principals: { updates: principals.updates.length, inserts: principals.inserts.length },
      idempotency: { updates: idempotency.updates.length, inserts: idempotency.inserts.length },
      durable,
      audit: entry !== undefined,
    };
    const values: unknown[] = [];
    if (changes.meta !== undefined) values.push(changes.meta, base.rows.metaVersion);
    for (const { updates, inserts } of [principals, idempotency]) {
      for (const change of updates) values.push(change.id, change.baseVersion, change.data);
      for (const change of inserts) values.push(change.id, change.data);
    }
    if (entry !== undefined) values.push(entry.seq, JSON.stringify(entry), known?.hash);
    // Prepared once per connection and shape: the server plans it once, not on each write.
    const name = `rekey_write_${shape.meta ? 1 : 0}_${shape.principals.updates}_${shape.principals.inserts}_${shape.idempotency.updates}_${shape.idempotency.inserts}_${durable ? 1 : 0}${entry === undefined ? "" : "_a"}`;
    let text = this.writeStatements.get(name);
    if (text === undefined) {
      text = oneStatementWrite(this.sql, shape);
      this.writeStatements.set(name, text);
    }
    let version: number;
    try {
      const { rows: written } = await this.pool.query({ name, text, values });
      const row = written[0] as { version: string } | undefined;
      if (row === undefined) throw new WriteConflict();
      version = Number(row.version);
    } catch (error) {
      if (entry !== undefined && auditChainMoved(error)) {
        // Another entry came first: the statement rolled back; append under the lock.
        return this.writeInTransaction(expectedVersion, base, changes, durable, audit);
      }
      if (error instanceof WriteConflict || errorCodeOf(error) === WRITE_CONFLICT) {
        // Nothing was written: the entry this handle appended last may still be the log's.
        this.lastAppended ??= known;
        throw new WriteConflict();
      }
      throw storeUnavailable("write", this.location, error);
    }
    if (entry !== undefined) this.lastAppended = entry;
    if (version % TOMBSTONE_VERSIONS === 0) {
      // Outside the write: a purge that a crash skips waits for the next thousand versions.
      await this.transaction("write", async (client) => {
        for (const statement of this.sql.purgeTombstones) {
          await client.query(statement, [version - TOMBSTONE_VERSIONS]);
        }
      });
    }
    return version;
  }

  /**
   * One transaction: take the write turn, then each changed row by compare-and-set, then each
   * entry of `audit` chained to the log's last. With entries, the audit table is locked first:
   * a one-statement write with an entry locks it (at the statement's start) before the meta
   * row too, and the other order deadlocks with it.
   */
  private async writeInTransaction(
    expectedVersion: number,
    base: RowSnapshot,
    changes: ReturnType<typeof diffDocument>,
    durable: boolean,
    audit: readonly AuditEventInput[] = [],
  ): Promise<number> {
    let appended: AuditEntry | undefined;
    const version = await this.transaction(
      "write",
      async (client) => {
        if (audit.length > 0) await client.query(this.sql.lockAuditLog);
        let version: number;
        if (expectedVersion === 0) {
          const { rows } = await client.query(this.sql.insertMeta, [
            changes.meta ?? JSON.stringify(metaOf(base.data)),
          ]);
          if (rows[0] === undefined) throw new WriteConflict();
          version = 1;
        } else {
          const { rows } = await client.query(this.sql.bumpVersion);
          const turn = rows[0] as { version: string; purged_below: string } | undefined;
          if (turn === undefined) throw new WriteConflict();
          version = Number(turn.version);
          if (changes.meta !== undefined) {
            const set = await client.query(this.sql.setMeta, [
              base.rows.metaVersion,
              version,
              changes.meta,
            ]);
            if (set.rowCount !== 1) throw new WriteConflict();
          }
          if (version % TOMBSTONE_VERSIONS === 0) {
            for (const statement of this.sql.purgeTombstones) {
              await client.query(statement, [version - TOMBSTONE_VERSIONS]);
            }
          }
        }
        const kinds: [RowChange[], { insert: string; update: string }][] = [
          [changes.principals, this.sql.principalWrites],
          [changes.idempotency, this.sql.idempotencyWrites],
        ];
        for (const [list, writes] of kinds) {
          for (const change of list) {
            const result =
              change.baseVersion === undefined
                ? await client.query(writes.insert, [change.id, version, change.data])
                : await client.query(writes.update, [
                    change.id,
                    change.baseVersion,
                    version,
                    change.data,
                  ]);
            if (result.rowCount !== 1) throw new WriteConflict();
          }
        }
        if (audit.length > 0) appended = await this.appendInTransaction(client, audit);
        return version;
      },
      WriteConflict,
      // Not durable: the commit does not wait for its WAL to reach the disk. A crash may lose
      // it (the rows stay as the commit before left them), never half-apply it; and the WAL is
      // one sequence, so the next durable commit of any session flushes this one first.
      durable ? "BEGIN" : ASYNCHRONOUS_BEGIN,
    );
    if (appended !== undefined) this.lastAppended = appended;
    return version;
  }

  /**
   * Appends `events` in a transaction of `client` that holds the audit table's lock; resolves
   * with the last.
   */
  private async appendInTransaction(
    client: pg.PoolClient,
    events: readonly AuditEventInput[],
  ): Promise<AuditEntry | undefined> {
    const { rows } = await client.query(this.sql.lastAuditEntry);
    let last = rows[0] === undefined ? undefined : this.parseAuditEntry(rows[0].entry, "last");
    for (const event of events) {
      const entry = chainAuditEntry(last, event);
      assertWritableAuditEntry(entry);
      await client.query(this.sql.appendAudit, [entry.seq, JSON.stringify(entry)]);
      last = entry;
    }
    return last;
  }

  /**
   * Takes a session advisory lock on this handle's lock session, waiting up to `waitMs`.
   *
   * @throws RekeyError ROTATION_IN_PROGRESS when `waitMs` passes; STORE_UNAVAILABLE;
   *   STORE_BUSY (the server has no connection left).
   */
  async lock(name: string, options: LockOptions): Promise<StoreLock> {
    this.assertOpen();
    if (options.read !== true) return this.locks.lock(name, options);
    // The holder's next read, sent with the try that takes the lock (one round trip fewer).
    await this.ensureSetUp();
    const latest = this.latest;
    const askedAt = performance.now();
    const lock = await this.locks.lock(name, options, {
      name: "rekey_read_after_lock",
      text: this.sql.read,
      literals: [String(latest?.snapshot.version ?? -1)],
    });
    const { after, ...held } = lock;
    if (after === undefined) return held;
    let snapshot: RowSnapshot;
    try {
      snapshot = this.snapshotOfRead(after.rows[0] as ReadRow | undefined, latest?.snapshot);
    } catch (error) {
      await held.release();
      throw error;
    }
    this.remember(snapshot, askedAt);
    return { ...held, snapshot: publicSnapshot(snapshot) };
  }

  /** The snapshot the read statement's row gives, built on `previous` (unchanged rows kept). */
  private snapshotOfRead(row: ReadRow | undefined, previous: RowSnapshot | undefined): RowSnapshot {
    return row === undefined
      ? EMPTY_SNAPSHOT
      : assembleSnapshot(row, previous, `${this.location} (schema tables)`, this.rowSealer());
  }

  /**
   * Appends under a table lock, so concurrent appenders on any host chain one after another.
   *
   * @throws RekeyError STORE_CORRUPT (the last entry is unreadable); STORE_UNAVAILABLE;
   *   INTERNAL (the event does not match the audit schema).
   */
  async appendAudit(event: AuditEventInput): Promise<AuditEntry> {
    this.assertOpen();
    await this.ensureSetUp();
    // While the log still ends with the entry this handle appended last, one autocommitted
    // statement chains to it (one round trip instead of five: begin, lock, read, insert,
    // commit). Any other last entry, or a racing appender, falls through to the lock.
    const known = this.lastAppended;
    this.lastAppended = undefined;
    const durable = !this.journaledByThisHandle(event);
    if (known !== undefined) {
      const entry = chainAuditEntry(known, event);
      assertWritableAuditEntry(entry);
      const { rowCount } = await this.query(
        "append to the audit log of",
        durable ? this.sql.appendAuditAfter : this.sql.appendAuditAfterAsynchronously,
        [entry.seq, JSON.stringify(entry), known.hash],
        durable ? "rekey_append_audit" : "rekey_append_audit_async",
      );
      if (rowCount === 1) {
        this.lastAppended = entry;
        return entry;
      }
    }
    const entry = await this.transaction(
      "append to the audit log of",
      async (client) => {
        await client.query(this.sql.lockAuditLog);
        const { rows } = await client.query(this.sql.lastAuditEntry);
        const last =
          rows[0] === undefined ? undefined : this.parseAuditEntry(rows[0].entry, "last");
        const entry = chainAuditEntry(last, event);
        assertWritableAuditEntry(entry);
        await client.query(this.sql.appendAudit, [entry.seq, JSON.stringify(entry)]);
        return entry;
      },
      undefined,
      durable ? "BEGIN" : ASYNCHRONOUS_BEGIN,
    );
    this.lastAppended = entry;
    return entry;
  }

  /**
   * Whether `event` is the entry of a rotation whose journal this handle's last write left in
   * phase `stored` (the key stored, durably: that write was). Such an entry is committed
   * without waiting for its WAL to reach the disk (one flush fewer per rotation), and that
   * loses nothing: the WAL is one sequence, so a crash that loses the entry loses every later
   * commit too, the journal's clearing included, and whoever resolves the journal writes the
   * entry (core's `auditOnce`). The rotation holds its lock from that write to the clearing,
   * so nobody else clears the journal meanwhile. Any other entry is committed durably.
   */
  private journaledByThisHandle(event: AuditEventInput): boolean {
    const requestId = event.requestId;
    const written = this.lastWritten;
    if (requestId === undefined || written === undefined) return false;
    for (const id in written.data.principals) {
      const intent = written.data.principals[id]?.intent;
      if (intent?.requestId === requestId) {
        return intent.phase === "stored" && intent.principal === event.principal;
      }
    }
    return false;
  }

  /** @throws RekeyError STORE_CORRUPT (an entry is unreadable); STORE_UNAVAILABLE. */
  async readAudit(): Promise<AuditEntry[]> {
    this.assertOpen();
    await this.ensureSetUp();
    const { rows } = await this.query("read the audit log of", this.sql.readAudit);
    return rows.map((row: { entry: unknown }, index) =>
      this.parseAuditEntry(row.entry, `row ${index + 1}`),
    );
  }

  /**
   * Calls `listener` after each write through any handle on this schema. A write made while
   * the LISTEN connection was (re)starting is reported once it is up; a notification may
   * then arrive for a write the listener already saw, never none for one it did not.
   * Throws nothing.
   */
  watch(listener: () => void): () => void {
    if (this.closed) return () => {};
    this.listeners.add(listener);
    if (this.listeners.size === 1) void this.startListening();
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) this.stopListening();
    };
  }

  /**
   * Creates rekey's tables if missing and proves this user may write them, without changing
   * anything.
   *
   * @throws RekeyError STORE_UNAVAILABLE (unreachable, no privileges, a read-only standby).
   */
  async checkWritable(): Promise<void> {
    this.assertOpen();
    await this.ensureSetUp();
    await this.transaction("write to", async (client) => {
      for (const probe of this.sql.probeWrites) await client.query(probe);
    });
  }

  /**
   * Key-free problems: unreachable server, unreadable document, an audit log that cannot be
   * appended to (its last entry unreadable). Cheap enough for a readiness probe: it does not
   * read the whole log (`readAudit` and `verifyAuditChain` do). Throws nothing.
   */
  async health(): Promise<StoreHealth> {
    const problems: string[] = [];
    if (this.closed) problems.push("the store is closed");
    else {
      // Every key is opened here: a read leaves them sealed until used, and `doctor` is where
      // a changed or swapped ciphertext must show before a rotation needs the key.
      const readAndOpen = async () =>
        problems.push(...keysThatDoNotOpen((await this.read()).data.principals));
      for (const check of [readAndOpen, () => this.readLastAuditEntry()]) {
        try {
          await check();
        } catch (error) {
          problems.push(error instanceof RekeyError ? error.message : String(error));
          break;
        }
      }
    }
    const encryption =
      problems.length === 0 ? await this.encryptionState().catch(() => undefined) : undefined;
    if (encryption?.state === "clear") {
      problems.push(`${encryption.clearKeys} key(s) stored in clear (the next open seals them)`);
    }
    return {
      ok: problems.length === 0,
      kind: this.kind,
      location: this.location,
      problems,
      ...(encryption === undefined ? {} : { encryption }),
    };
  }

  /** Releases held locks, stops watching and closes every connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.stopListening();
    // Closing the lock session frees every lock it holds on the server.
    await Promise.all([this.pool.end().catch(() => {}), this.locks.close()]);
  }

  private assertOpen(): void {
    if (this.closed) throw new RekeyError("STORE_UNAVAILABLE", "The PostgreSQL store is closed");
  }

  /**
   * Keeps `snapshot` for writes based on it, and as the latest unless a newer version is
   * already known (a racing write).
   */
  private remember(snapshot: RowSnapshot, confirmedAt: number): void {
    this.snapshots.set(snapshot.version, snapshot);
    if (this.snapshots.size > KEPT_SNAPSHOTS) {
      const oldest = Math.min(...this.snapshots.keys());
      this.snapshots.delete(oldest);
    }
    if (this.latest !== undefined && this.latest.snapshot.version > snapshot.version) return;
    this.latest = { snapshot, confirmedAt };
  }

  /**
   * Seals every row again under `newKey`, one row at a time; the old key keeps opening rows
   * until the last is done, and run again after a crash it seals what is left.
   *
   * @throws RekeyError CONFIG_INVALID ("generate": a PostgreSQL store keeps no key file);
   *   STORE_LOCKED / STORE_CORRUPT (a row that does not open); STORE_UNAVAILABLE.
   */
  async resealUnder(newKey: MasterKey | "generate"): Promise<{
    keyId: string;
    previousKeyId: string | undefined;
    records: number;
    keptAt: undefined;
  }> {
    this.assertOpen();
    if (newKey === "generate") {
      throw new RekeyError("CONFIG_INVALID", "A PostgreSQL store keeps no key file to generate", {
        hint: "Give the new key: --new-key file:PATH or --new-key env:VARIABLE.",
      });
    }
    await this.ensureSetUp();
    const old = this.rowSealer();
    const sealer = new RecordSealer(
      old.storeId,
      {
        current: newKey,
        accepted: [newKey, ...old.keyring.accepted.filter((key) => key.id !== newKey.id)],
      },
      this.location,
    );
    let records: number;
    try {
      records = await sealRows(this.pool, this.sql, sealer);
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("seal the keys of", this.location, error);
    }
    this.sealer = sealer;
    return { keyId: newKey.id, previousKeyId: old.keyring.current.id, records, keptAt: undefined };
  }

  /**
   * The principal records as they were before the schema-2 → 3 migration sealed their keys,
   * from its backup (`principals_schema_2`, each row sealed whole under the master key), keys
   * opened; empty when the store was never migrated. To restore, write them back through
   * {@link compareAndSet}: they are sealed again.
   *
   * @throws RekeyError STORE_LOCKED / STORE_CORRUPT (a backup row that does not open);
   *   STORE_UNAVAILABLE.
   */
  async migrationBackup(): Promise<Record<string, PrincipalRecord>> {
    this.assertOpen();
    await this.ensureSetUp();
    try {
      return (await readMigrationBackup(
        this.pool,
        this.sql,
        this.rowSealer(),
        this.location,
      )) as Record<string, PrincipalRecord>;
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("read the migration backup of", this.location, error);
    }
  }

  /** The sealer (set up by `ensureSetUp`, which every caller awaited first). */
  private rowSealer(): RecordSealer {
    if (this.sealer === undefined) throw new RekeyError("INTERNAL", "Store used before set-up");
    return this.sealer;
  }

  /**
   * Whether every key in the rows is sealed, and under which master key. Key-free.
   * @throws RekeyError STORE_UNAVAILABLE.
   */
  async encryptionState(): Promise<StoreEncryption> {
    await this.ensureSetUp();
    try {
      return await rowEncryption(this.pool, this.sql, this.sealer);
    } catch (error) {
      throw storeUnavailable("read", this.location, error);
    }
  }

  private ensureSetUp(): Promise<void> {
    this.setUp ??= this.createTablesAndSeal().catch((error: unknown) => {
      this.setUp = undefined; // try again next time (the server may come back)
      throw error;
    });
    return this.setUp;
  }

  /** Tables, then the sealer, then any row still in clear (or under an old key) sealed. */
  private async createTablesAndSeal(): Promise<void> {
    await this.createTables();
    try {
      const sealer = await openRowSealer(
        this.pool,
        this.sql,
        this.keyEnv,
        this.previousMasterKeys,
        this.location,
      );
      if (this.sealKeys) {
        this.sealer = sealer;
        await sealRowsOnOpen(this.pool, this.sql, this.sealer);
      } else {
        this.sealer = new ClearSealer(sealer.storeId, sealer.keyring, this.location);
        await recordSealedUnder(this.pool, this.sql, undefined);
      }
    } catch (error) {
      if (error instanceof RekeyError) throw error;
      throw storeUnavailable("seal the keys of", this.location, error);
    }
  }

  private async createTables(): Promise<void> {
    const { rows } = await this.query("open", this.sql.isSetUp);
    if ((rows[0] as { ready: boolean } | undefined)?.ready) return;
    await this.transaction(
      "create the tables of",
      async (client) => {
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1), 0)", [
          this.sql.lockNamespace,
        ]);
        // Another handle may have set up while we waited: its tables may be in use, and the
        // DDL below would take locks that deadlock with those writers.
        const again = await client.query(this.sql.isSetUp);
        if ((again.rows[0] as { ready: boolean } | undefined)?.ready) return;
        for (const statement of this.sql.setUp) await client.query(statement);
        await this.migrateLegacy(client);
      },
      RekeyError,
    );
  }

  /**
   * Moves a schema-1 store (one `credentials` row) into rows, once, under the setup lock; the
   * old table stays as `credentials_schema_1`. A row that cannot be migrated is STORE_CORRUPT
   * and nothing changes.
   */
  private async migrateLegacy(client: pg.PoolClient): Promise<void> {
    const legacy = await client.query(this.sql.legacyExists);
    if (!(legacy.rows[0] as { present: boolean }).present) return;
    const meta = await client.query(this.sql.metaExists);
    const { rows } = await client.query(this.sql.legacyRow);
    const row = rows[0] as { version: string; data: unknown } | undefined;
    if (!(meta.rows[0] as { present: boolean }).present && row !== undefined) {
      const data = migrateStoreData(
        row.data,
        `${this.location} (table ${this.sql.legacyCredentials})`,
      );
      const version = Number(row.version) + 1;
      await client.query(this.sql.insertMigratedMeta, [version, JSON.stringify(metaOf(data))]);
      for (const [id, record] of Object.entries(data.principals)) {
        await client.query(this.sql.principalWrites.insert, [id, version, JSON.stringify(record)]);
      }
      for (const [slot, record] of Object.entries(data.idempotency)) {
        await client.query(this.sql.idempotencyWrites.insert, [
          slot,
          version,
          JSON.stringify(record),
        ]);
      }
    }
    await client.query(this.sql.retireLegacy);
  }

  /** `name`: prepare it once per connection (the server parses and plans it once). */
  private async query(
    action: string,
    text: string,
    values?: unknown[],
    name?: string,
  ): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(name === undefined ? { text, values } : { name, text, values });
    } catch (error) {
      throw storeUnavailable(action, this.location, error);
    }
  }

  /** Runs `work` in a transaction; errors of class `passThrough` are rethrown as they are. */
  private async transaction<T>(
    action: string,
    work: (client: pg.PoolClient) => Promise<T>,
    passThrough?: abstract new (...args: never[]) => Error,
    begin = "BEGIN",
  ) {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw storeUnavailable(action, this.location, error);
    }
    let broken = false;
    // Between two queries of the transaction the connection has no query to fail and no pool
    // listener (pg-pool listens only on idle clients): a server that drops it then (restart,
    // pg_terminate_backend) would emit an unhandled 'error' and crash the process.
    const lost = () => {
      broken = true;
    };
    client.on("error", lost);
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      if (passThrough !== undefined && error instanceof passThrough) throw error;
      throw storeUnavailable(action, this.location, error);
    } finally {
      client.off("error", lost);
      // A connection that could not even roll back, or that broke, is discarded, not reused.
      client.release(broken);
    }
  }

  private async readLastAuditEntry(): Promise<AuditEntry | undefined> {
    await this.ensureSetUp();
    const { rows } = await this.query("read the audit log of", this.sql.lastAuditEntry);
    return rows[0] === undefined ? undefined : this.parseAuditEntry(rows[0].entry, "last");
  }

  private parseAuditEntry(raw: unknown, which: string): AuditEntry {
    const parsed = auditEntrySchema.safeParse(raw);
    if (!parsed.success) {
      throw new RekeyError(
        "STORE_CORRUPT",
        `${this.location} (table ${this.sql.auditLog}): the ${which} entry is not an audit entry at ${describeIssues(parsed.error)}`,
        { hint: "Inspect the audit_log table; rekey will not append after an unreadable entry." },
      );
    }
    return parsed.data as AuditEntry;
  }

  /** Tells every listener about `version`, once per version, after the caller's turn. */
  private notify(version: number): void {
    if (version <= this.notifiedVersion) return;
    this.notifiedVersion = version;
    queueMicrotask(() => this.notifyAll());
  }

  private notifyAll(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; it must not stop the others.
      }
    }
  }

  private async startListening(): Promise<void> {
    let client: pg.Client;
    try {
      // pg reads sslrootcert/sslcert/sslkey here, synchronously: a missing file throws.
      client = new pg.Client({
        connectionString: this.connectionString,
        connectionTimeoutMillis: this.connectTimeoutMs,
      });
    } catch {
      // Reads and writes report it (STORE_UNAVAILABLE with a hint); listening tries again.
      if (this.closed || this.listeners.size === 0) return;
      this.listenRetry = setTimeout(() => void this.startListening(), 1000);
      this.listenRetry.unref();
      return;
    }
    this.listenClient = client;
    const restart = () => {
      if (this.listenClient !== client) return;
      this.listenClient = undefined;
      client.end().catch(() => {});
      if (this.closed || this.listeners.size === 0) return;
      this.listenRetry = setTimeout(() => void this.startListening(), 1000);
      this.listenRetry.unref();
    };
    client.on("error", restart);
    client.on("end", restart);
    client.on("notification", (message) => {
      if (message.channel === this.sql.channel) this.notify(Number(message.payload));
    });
    try {
      await client.connect();
      await this.ensureSetUp();
      await client.query(`LISTEN "${this.sql.channel}"`);
      // Writes made before LISTEN took effect sent their NOTIFY to no one: compare versions.
      const { rows } = await client.query(this.sql.version);
      const version = Number((rows[0] as { version: string }).version);
      if (this.listenClient !== client) return;
      // (A write between LISTEN and this query is reported twice, by NOTIFY and here: notify
      // tells listeners once per version.)
      if (this.latest === undefined || version !== this.latest.snapshot.version) {
        this.notify(version);
      }
    } catch {
      restart();
    }
  }

  private stopListening(): void {
    clearTimeout(this.listenRetry);
    this.listenRetry = undefined;
    const client = this.listenClient;
    this.listenClient = undefined;
    client?.end().catch(() => {});
  }
}

/** What a snapshot looks like to callers: version and data, without the row versions. */
function publicSnapshot(snapshot: RowSnapshot): StoreSnapshot {
  return snapshotViews.get(snapshot) ?? makeView(snapshot);
}

const snapshotViews = new WeakMap<RowSnapshot, StoreSnapshot>();
function makeView(snapshot: RowSnapshot): StoreSnapshot {
  const view = Object.freeze({ version: snapshot.version, data: snapshot.data });
  snapshotViews.set(snapshot, view);
  return view;
}

/**
 * `data` with each principal record this write sealed holding its keys as the ciphertexts it
 * wrote (`SealedKey`s, as a read leaves them) instead of in clear. The handle's next write of
 * the record (a rotation writes it three times) then writes them back as they are instead of
 * sealing them again; the record's sealed form is the one the diff remembered, so this seals
 * nothing either.
 */
function withWrittenKeysSealed(
  data: StoreData,
  changes: ReturnType<typeof diffDocument>,
  sealer: RecordSealer,
): StoreData {
  let principals: StoreData["principals"] | undefined;
  for (const change of changes.principals) {
    const record = data.principals[change.id];
    if (change.data === null || record === undefined || !holdsKeyInClear(record)) continue;
    const stored = sealer.sealRecord(change.id, record);
    const copy: Record<string, unknown> = { ...stored };
    if (Array.isArray(stored.alternates)) {
      copy.alternates = stored.alternates.map((entry: unknown) =>
        typeof entry === "object" && entry !== null ? { ...entry } : entry,
      );
    }
    principals ??= { ...data.principals };
    principals[change.id] = deepFreeze(
      sealer.leaveSealed(change.id, copy, stored),
    ) as unknown as PrincipalRecord;
  }
  return principals === undefined ? data : (deepFreeze({ ...data, principals }) as StoreData);
}

function holdsKeyInClear(record: DeepReadonly<PrincipalRecord>): boolean {
  return (
    typeof record.key === "string" ||
    (record.alternates ?? []).some((alternate) => typeof alternate.key === "string")
  );
}

/** The snapshot a successful write leaves: `data` at `version`, changed rows at `version`. */
function afterWrite(
  base: RowSnapshot,
  version: number,
  data: StoreData,
  changes: ReturnType<typeof diffDocument>,
): RowSnapshot {
  const principals = new Map(base.rows.principals);
  const idempotency = new Map(base.rows.idempotency);
  for (const [versions, list] of [
    [principals, changes.principals],
    [idempotency, changes.idempotency],
  ] as const) {
    for (const change of list) {
      if (change.data === null) versions.delete(change.id);
      else versions.set(change.id, version);
    }
  }
  return {
    version,
    data: data as DeepReadonly<StoreData>,
    rows: {
      metaVersion: changes.meta === undefined ? base.rows.metaVersion : version,
      principals,
      idempotency,
    },
  };
}

/**
 * Opens a PostgreSQL store; nothing connects until the first call.
 * @throws RekeyError CONFIG_INVALID (the URL or options); STORE_LOCKED (no master key source).
 */
export function createPostgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}

import { performance } from "node:perf_hooks";
import {
  type AuditEntry,
  type AuditEventInput,
  assertWritableAuditEntry,
  assertWritableStoreData,
  auditEntrySchema,
  type CompareAndSetResult,
  type CredentialStore,
  chainAuditEntry,
  deepFreeze,
  describeIssues,
  emptyStoreData,
  type LockOptions,
  migrateStoreData,
  type ReadOptions,
  RekeyError,
  type StoreData,
  type StoreHealth,
  type StoreLock,
  type StoreSnapshot,
} from "@rekey/core";
import pg from "pg";
import { errorCodeOf, parsePostgresUrl, storeUnavailable } from "./connection.js";
import { type RekeySql, sqlFor } from "./sql.js";

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE[?schema=NAME&sslmode=...]`. Parts left out
   * come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and ~/.pgpass, as with libpq.
   */
  url: string;
  /** Schema for rekey's tables, created on first use. Default: the URL's `schema`, else "rekey". */
  schema?: string;
  /** Most pooled connections for reads and writes; each held lock has its own. Default 4. */
  maxConnections?: number;
  /** Give up connecting after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Give up on one query after this long (lock waits excepted). Default 15000 ms. */
  queryTimeoutMs?: number;
}

const EMPTY_SNAPSHOT: StoreSnapshot = deepFreeze({ version: 0, data: emptyStoreData() });

/** SQLSTATE of a lock wait that ran past `lock_timeout`. */
const LOCK_NOT_AVAILABLE = "55P03";
/** SQLSTATE of a setting this server does not know (idle_session_timeout before PostgreSQL 14). */
const UNDEFINED_OBJECT = "42704";

/**
 * A credential store in PostgreSQL, for fleets: every process on every host that opens the
 * same database and schema shares one store.
 *
 * - The store document is one row (`credentials`) written by compare-and-set on its version.
 * - The audit log is a table (`audit_log`); appends are serialised by a table lock, so the
 *   hash chain stays whole whoever appends.
 * - Locks are session advisory locks, each on its own connection. A holder that dies loses
 *   its lock as its connection closes; one that hangs loses it after `leaseMs`, because the
 *   lock's connection sets `idle_session_timeout` to `leaseMs` and a timer keeps it busy
 *   while the holder's event loop runs.
 * - `watch` LISTENs on the schema's channel; a trigger NOTIFYs on every write by anyone.
 *
 * Tables are created on first use when missing (needs CREATE on the database or schema);
 * a user without that right can use tables that an owner created.
 */
export class PostgresStore implements CredentialStore {
  readonly kind = "postgres";
  readonly location: string;
  private readonly connectionString: string;
  private readonly sql: RekeySql;
  private readonly pool: pg.Pool;
  /** Connections for locks, one per held lock: never the data pool, whose connections a
   * holder needs while waiters hold theirs. Pooled, because opening one costs tens of ms. */
  private readonly lockPool: pg.Pool;
  private readonly connectTimeoutMs: number;
  private setUp: Promise<void> | undefined;
  /** The newest snapshot this handle has seen, and when it was last confirmed current. */
  private latest: { snapshot: StoreSnapshot; confirmedAt: number } | undefined;
  /** Each held lock's connection, with the timer that keeps its session busy. */
  private readonly heldLocks = new Map<pg.PoolClient, NodeJS.Timeout>();
  private readonly listeners = new Set<() => void>();
  private listenClient: pg.Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  /** The highest version listeners were told about: one write, one notification. */
  private notifiedVersion = -1;
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    const target = parsePostgresUrl(options.url, options.schema);
    this.location = target.location;
    this.connectionString = target.connectionString;
    this.sql = sqlFor(target.schema);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.pool = new pg.Pool({
      connectionString: this.connectionString,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: this.connectTimeoutMs,
      query_timeout: options.queryTimeoutMs ?? 15_000,
      idleTimeoutMillis: 10_000,
      // A CLI run must be able to exit while idle connections linger.
      allowExitOnIdle: true,
    });
    this.lockPool = new pg.Pool({
      connectionString: this.connectionString,
      max: 64,
      connectionTimeoutMillis: this.connectTimeoutMs,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
    });
    // An idle pooled connection that breaks (server restart) is dropped; the next query
    // opens a new one. Without a handler the error would crash the process.
    this.pool.on("error", () => {});
    this.lockPool.on("error", () => {});
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
      return latest.snapshot;
    }
    await this.ensureSetUp();
    const askedAt = performance.now();
    const known = latest?.snapshot.version ?? -1;
    const { rows } = await this.query("read", this.sql.read, [known]);
    const row = rows[0] as { version: string; data: unknown } | undefined;
    let snapshot: StoreSnapshot;
    if (row === undefined) snapshot = EMPTY_SNAPSHOT;
    else if (row.data === null && latest !== undefined) snapshot = latest.snapshot;
    else {
      const data = migrateStoreData(row.data, `${this.location} (table ${this.sql.credentials})`);
      snapshot = deepFreeze({ version: Number(row.version), data });
    }
    this.remember(snapshot, askedAt);
    return snapshot;
  }

  /**
   * @throws RekeyError INTERNAL when `data` does not match the store schema; STORE_UNAVAILABLE;
   *   STORE_CORRUPT (while reading the current snapshot after a conflict).
   */
  async compareAndSet(expectedVersion: number, data: StoreData): Promise<CompareAndSetResult> {
    this.assertOpen();
    // The parse copies `data`, so the stored snapshot is not the caller's object.
    const validated = assertWritableStoreData(data);
    await this.ensureSetUp();
    const writtenAt = performance.now();
    const json = JSON.stringify(validated);
    const { rows } =
      expectedVersion === 0
        ? await this.query("write", this.sql.insertFirst, [json])
        : await this.query("write", this.sql.compareAndSet, [expectedVersion, json]);
    const row = rows[0] as { version: string } | undefined;
    if (row === undefined) return { ok: false, current: await this.read() };
    const snapshot = deepFreeze({ version: Number(row.version), data: validated });
    this.remember(snapshot, writtenAt);
    this.notify(snapshot.version);
    return { ok: true, snapshot };
  }

  /**
   * Takes a session advisory lock on a connection of its own, waiting up to `waitMs` (the
   * server's `lock_timeout`).
   *
   * @throws RekeyError ROTATION_IN_PROGRESS when `waitMs` passes; STORE_UNAVAILABLE.
   */
  async lock(name: string, options: LockOptions): Promise<StoreLock> {
    this.assertOpen();
    const startedAt = performance.now();
    let client: pg.PoolClient;
    try {
      client = await this.lockPool.connect();
    } catch (error) {
      throw storeUnavailable(`lock "${name}" in`, this.location, error);
    }
    const keys = [this.sql.lockNamespace, name];
    let keepAlive: NodeJS.Timeout;
    try {
      await this.limitIdleTime(client, options.leaseMs);
      const remainingMs = Math.floor(options.waitMs - (performance.now() - startedAt));
      if (!(await this.acquire(client, keys, remainingMs))) {
        throw new RekeyError("ROTATION_IN_PROGRESS", `Lock "${name}" is held by another rotation`, {
          hint: "Another rotation is running; wait for it to finish and retry.",
        });
      }
      // Keeps the session busy, so idle_session_timeout ends it only if this process stalls.
      keepAlive = setInterval(
        () => {
          client.query("SELECT 1").catch(() => {});
        },
        Math.max(10, Math.floor(options.leaseMs / 3)),
      );
      keepAlive.unref();
    } catch (error) {
      await returnLockConnection(client);
      throw storeUnavailable(`lock "${name}" in`, this.location, error);
    }
    this.heldLocks.set(client, keepAlive);
    let released = false;
    return {
      name,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(keepAlive);
        // close() may have dropped the connection (and so the lock) already.
        if (this.heldLocks.delete(client)) await returnLockConnection(client);
      },
    };
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
    return this.transaction("append to the audit log of", async (client) => {
      await client.query(this.sql.lockAuditLog);
      const { rows } = await client.query(this.sql.lastAuditEntry);
      const last = rows[0] === undefined ? undefined : this.parseAuditEntry(rows[0].entry, "last");
      const entry = chainAuditEntry(last, event);
      assertWritableAuditEntry(entry);
      await client.query(this.sql.appendAudit, [entry.seq, JSON.stringify(entry)]);
      return entry;
    });
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
      for (const check of [() => this.read(), () => this.readLastAuditEntry()]) {
        try {
          await check();
        } catch (error) {
          problems.push(error instanceof RekeyError ? error.message : String(error));
          break;
        }
      }
    }
    return { ok: problems.length === 0, kind: this.kind, location: this.location, problems };
  }

  /** Releases held locks, stops watching and closes every connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.stopListening();
    // Closing a held lock's connection frees the lock on the server.
    for (const [client, keepAlive] of this.heldLocks) {
      clearInterval(keepAlive);
      client.release(true);
    }
    this.heldLocks.clear();
    await Promise.all([this.pool.end().catch(() => {}), this.lockPool.end().catch(() => {})]);
  }

  private assertOpen(): void {
    if (this.closed) throw new RekeyError("STORE_UNAVAILABLE", "The PostgreSQL store is closed");
  }

  /** Keeps `snapshot` as the latest unless a newer version is already known (a racing write). */
  private remember(snapshot: StoreSnapshot, confirmedAt: number): void {
    if (this.latest !== undefined && this.latest.snapshot.version > snapshot.version) return;
    this.latest = { snapshot, confirmedAt };
  }

  private ensureSetUp(): Promise<void> {
    this.setUp ??= this.createTables().catch((error: unknown) => {
      this.setUp = undefined; // try again next time (the server may come back)
      throw error;
    });
    return this.setUp;
  }

  private async createTables(): Promise<void> {
    const { rows } = await this.query("open", this.sql.isSetUp);
    if ((rows[0] as { ready: boolean } | undefined)?.ready) return;
    await this.transaction("create the tables of", async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1), 0)", [this.sql.lockNamespace]);
      for (const statement of this.sql.setUp) await client.query(statement);
    });
  }

  private async query(action: string, text: string, values?: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(text, values);
    } catch (error) {
      throw storeUnavailable(action, this.location, error);
    }
  }

  private async transaction<T>(action: string, work: (client: pg.PoolClient) => Promise<T>) {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw storeUnavailable(action, this.location, error);
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw storeUnavailable(action, this.location, error);
    } finally {
      // A connection that could not even roll back is discarded, not reused.
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

  /** Ends the lock's session if it sits idle longer than `leaseMs` (a stalled holder). */
  private async limitIdleTime(client: pg.PoolClient, leaseMs: number): Promise<void> {
    try {
      await client.query("SELECT set_config('idle_session_timeout', $1, false)", [
        `${Math.max(1, Math.ceil(leaseMs))}ms`,
      ]);
    } catch (error) {
      // Before PostgreSQL 14 only the connection's end frees the lock.
      if (errorCodeOf(error) !== UNDEFINED_OBJECT) throw error;
    }
  }

  /** Whether the advisory lock on `keys` was taken within `waitMs`. */
  private async acquire(client: pg.PoolClient, keys: string[], waitMs: number): Promise<boolean> {
    if (waitMs <= 0) {
      const { rows } = await client.query(
        "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS taken",
        keys,
      );
      return (rows[0] as { taken: boolean }).taken;
    }
    await client.query("SELECT set_config('lock_timeout', $1, false)", [`${waitMs}ms`]);
    try {
      await client.query("SELECT pg_advisory_lock(hashtext($1), hashtext($2))", keys);
      return true;
    } catch (error) {
      if (errorCodeOf(error) === LOCK_NOT_AVAILABLE) return false;
      throw error;
    } finally {
      await client.query("SELECT set_config('lock_timeout', '0', false)").catch(() => {});
    }
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

/**
 * Frees whatever lock `client` holds and puts it back in the lock pool, idle without a time
 * limit; a connection that cannot do that is closed instead (which frees its locks too).
 */
async function returnLockConnection(client: pg.PoolClient): Promise<void> {
  try {
    await client.query(
      "SELECT pg_advisory_unlock_all(), set_config('idle_session_timeout', '0', false)",
    );
    client.release();
  } catch (error) {
    client.release(error instanceof Error ? error : true);
  }
}

/** Opens a PostgreSQL store; nothing connects until the first call. @throws RekeyError CONFIG_INVALID. */
export function createPostgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}

import { performance } from "node:perf_hooks";
import { RekeyError } from "@rekey/core";
import type { LockOptions, StoreLock } from "@rekey/core/store-kit";
import pg from "pg";
import { errorCodeOf, storeUnavailable } from "./connection.js";

/** SQLSTATE of a setting this server does not know (idle_session_timeout before PostgreSQL 14). */
const UNDEFINED_OBJECT = "42704";
/** A lock another process holds is tried again after this long, doubling up to POLL_MAX_MS. */
const POLL_MIN_MS = 5;
const POLL_MAX_MS = 100;
/** A session with no lock held or wanted is closed after this long (a burst reuses it). */
const SESSION_IDLE_MS = 5000;

/** Options of {@link LockSession}. */
export interface LockSessionOptions {
  connectionString: string;
  /** The redacted URL, for messages. */
  location: string;
  /** The first half of every advisory lock key: rekey's namespace for one schema. */
  namespace: string;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}

interface Session {
  client: pg.Client;
  /** The `idle_session_timeout` last asked for, in ms (0: none). */
  idleTimeoutMs: number;
  broken: boolean;
  /** The last query sent: the next one waits for it (see `query`). */
  queue: Promise<unknown>;
  /**
   * The statements prepared on this session (see {@link AfterLock}); undefined when a failed
   * query left that unknown (the next one deallocates them all first).
   */
  prepared: Set<string> | undefined;
}

/**
 * A statement run right after a lock is taken, in the same round trip: prepared on the session
 * the first time (as `name`, from `text` with parameters $1, $2...), then executed with
 * `literals` (SQL literals: a query of several statements takes no parameters).
 */
export interface AfterLock {
  readonly name: string;
  readonly text: string;
  readonly literals: readonly string[];
}

/** node-postgres's Client has ref() and unref() (its socket's); @types/pg does not declare them. */
type RefCountedClient = pg.Client & { ref(): void; unref(): void };

const TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS taken";
const UNLOCK = "SELECT pg_advisory_unlock(hashtext($1), hashtext($2))";
// The same, setting the session's idle_session_timeout ($3) in the same statement (one round
// trip instead of two). The setting comes first: the lock is never held without it.
const SET_AND_TRY_LOCK = `SELECT set_config('idle_session_timeout', $3, false),
  pg_try_advisory_lock(hashtext($1), hashtext($2)) AS taken`;
const UNLOCK_AND_SET = `SELECT pg_advisory_unlock(hashtext($1), hashtext($2)),
  set_config('idle_session_timeout', $3, false)`;
const SET_IDLE_TIMEOUT = "SELECT set_config('idle_session_timeout', $1, false)";

/**
 * All the locks of one store handle on a single PostgreSQL session, so that a process needs one
 * connection for its locks however many it holds or waits for (it used to take one each, and
 * deadlocked once its lock pool was full of holders waiting for one more lock).
 *
 * - In the process, a queue per name gives the lock to one holder at a time; only that holder
 *   takes the session advisory lock (which is re-entrant within a session, so the queue is what
 *   keeps two holders of this process apart).
 * - Against other processes, the session tries the advisory lock without blocking (a blocked
 *   session could serve no one else) and tries again, 5 ms doubling to 100 ms, until `waitMs`.
 * - The lease: while a lock is held or being taken, the session's `idle_session_timeout` is the
 *   shortest lease among them and a timer keeps it busy, so a holder that stalls (SIGSTOP, a
 *   frozen VM) loses its locks after `leaseMs`, and one that dies loses them at once, with its
 *   connection. Keys are those of earlier versions, `(hashtext(namespace), hashtext(name))`, so
 *   old and new processes in one fleet still exclude each other.
 */
export class LockSession {
  private readonly options: LockSessionOptions;
  private session: Promise<Session> | undefined;
  /** The session once connected, until it is lost or closed. */
  private opened: Session | undefined;
  /** Each name locked or being locked in this process, with the callers queued behind it. */
  private readonly turns = new Map<string, Array<() => void>>();
  /** The lease of each lock held or being taken through the session. */
  private readonly leases = new Map<symbol, number>();
  private keepAlive: { timer: NodeJS.Timeout; everyMs: number; session: Session } | undefined;
  private idleClose: NodeJS.Timeout | undefined;
  /** Set once the server says it has no `idle_session_timeout` (before PostgreSQL 14). */
  private noIdleTimeout = false;
  private closed = false;

  constructor(options: LockSessionOptions) {
    this.options = options;
  }

  /**
   * Takes `name`, waiting up to `waitMs` for a holder in this process or another. `then`: a
   * statement sent with each try, in the same round trip, run after it (its own snapshot: once
   * the try took the lock, it sees every commit made before the lock was granted); its result
   * comes back as `after`.
   *
   * @throws RekeyError ROTATION_IN_PROGRESS when `waitMs` passes; STORE_UNAVAILABLE (cannot
   *   connect or query; closed); STORE_BUSY (the server has no connection left).
   */
  async lock(
    name: string,
    options: LockOptions,
    then?: AfterLock,
  ): Promise<StoreLock & { after?: pg.QueryResult }> {
    if (this.closed) throw new RekeyError("STORE_UNAVAILABLE", "The PostgreSQL store is closed");
    const deadline = performance.now() + options.waitMs;
    clearTimeout(this.idleClose);
    if (!(await this.takeTurn(name, deadline))) throw inProgress(name);
    const lease = Symbol(name);
    this.leases.set(lease, options.leaseMs);
    let session: Session;
    let after: pg.QueryResult | undefined;
    try {
      session = await this.open();
      // The timeout goes with the first try (see `tryLock`): a process that stalls right after
      // taking the lock must lose it.
      this.applyLeases(session, false);
      let delayMs = POLL_MIN_MS;
      for (;;) {
        const tried = await this.tryLock(session, name, then);
        if (tried.taken) {
          after = tried.after;
          break;
        }
        const remainingMs = deadline - performance.now();
        if (remainingMs <= 0) throw inProgress(name);
        await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, remainingMs)));
        delayMs = Math.min(delayMs * 2, POLL_MAX_MS);
        if (this.closed)
          throw new RekeyError("STORE_UNAVAILABLE", "The PostgreSQL store is closed");
      }
    } catch (error) {
      this.leases.delete(lease);
      this.passTurn(name);
      this.settle();
      throw storeUnavailable(`lock "${name}" in`, this.options.location, error);
    }
    let released = false;
    return {
      name,
      ...(after === undefined ? {} : { after }),
      release: async () => {
        if (released) return;
        released = true;
        this.leases.delete(lease);
        await this.unlock(session, name);
        this.passTurn(name);
        this.settle();
      },
    };
  }

  /** Ends the session, which frees every lock it holds on the server. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleClose);
    this.stopKeepAlive();
    const opened = await this.session?.catch(() => undefined);
    if (opened !== undefined) await this.end(opened);
  }

  /** Waits for this process's turn at `name` until `deadline`; false when it passed. */
  private takeTurn(name: string, deadline: number): Promise<boolean> {
    const queue = this.turns.get(name);
    if (queue === undefined) {
      this.turns.set(name, []);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const granted = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          const index = queue.indexOf(granted);
          if (index >= 0) queue.splice(index, 1);
          resolve(false);
        },
        Math.max(0, deadline - performance.now()),
      );
      queue.push(granted);
    });
  }

  /** Hands `name` to the next caller of this process queued for it, if any. */
  private passTurn(name: string): void {
    const next = this.turns.get(name)?.shift();
    if (next !== undefined) next();
    else this.turns.delete(name);
  }

  private async open(): Promise<Session> {
    if (this.closed) throw new RekeyError("STORE_UNAVAILABLE", "The PostgreSQL store is closed");
    this.session ??= this.connect().catch((error: unknown) => {
      this.session = undefined;
      throw error;
    });
    const session = await this.session;
    // In use: the process stays up for it (see `settle`).
    (session.client as RefCountedClient).ref();
    return session;
  }

  private async connect(): Promise<Session> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      query_timeout: this.options.queryTimeoutMs,
    });
    const session: Session = {
      client,
      idleTimeoutMs: 0,
      broken: false,
      queue: Promise.resolve(),
      prepared: new Set(),
    };
    const lost = () => {
      // The server ended it (restart, idle_session_timeout after a stall) or the network did:
      // its locks are gone. The next lock opens a new session.
      if (session.broken) return;
      session.broken = true;
      if (this.keepAlive?.session === session) this.stopKeepAlive();
      if (this.opened === session) {
        this.opened = undefined;
        this.session = undefined;
      }
      client.end().catch(() => {});
    };
    client.on("error", lost);
    client.on("end", lost);
    await client.connect();
    if (session.broken) throw new Error("the lock session ended as it opened");
    this.opened = session;
    return session;
  }

  /**
   * Tries `name` once, setting the session's idle timeout in the same statement if it must;
   * with `then`, that statement too, after it (see `lock`).
   */
  private async tryLock(
    session: Session,
    name: string,
    then?: AfterLock,
  ): Promise<{ taken: boolean; after?: pg.QueryResult }> {
    const values = [this.options.namespace, name];
    const timeout = this.timeoutToSet(session);
    const tryOnce = async (text: string, params: string[]) => {
      if (then === undefined) {
        const { rows } = await query(session, text, params);
        return { taken: (rows[0] as { taken: boolean }).taken };
      }
      return this.tryLockThen(session, name, text, params, then);
    };
    try {
      return await (timeout === undefined
        ? tryOnce(TRY_LOCK, values)
        : tryOnce(SET_AND_TRY_LOCK, [...values, timeout]));
    } catch (error) {
      if (timeout === undefined || !this.unknownSetting(error)) throw error;
      return tryOnce(TRY_LOCK, values);
    }
  }

  /**
   * The try and `then` as two statements of one simple query (one round trip; PostgreSQL gives
   * each statement its own snapshot, so `then` sees what was committed before the lock was
   * taken). Parameters cannot go with two statements: they are written in as literals. A
   * failure after the try may leave the lock taken on the server (an advisory lock outlives
   * the statement that failed): it is released before the error is thrown.
   */
  private async tryLockThen(
    session: Session,
    name: string,
    text: string,
    params: string[],
    then: AfterLock,
  ): Promise<{ taken: boolean; after?: pg.QueryResult }> {
    const literal = (value: string) => session.client.escapeLiteral(value);
    const inlined = text.replace(/\$(\d+)/g, (_, index: string) =>
      literal(params[Number(index) - 1] ?? ""),
    );
    // Prepared once per session: the server then plans it once, not on every lock.
    const known = session.prepared;
    const prepare = known?.has(then.name)
      ? ""
      : `${known === undefined ? "DEALLOCATE ALL;\n" : ""}PREPARE ${then.name} AS ${then.text};\n`;
    const execute = `EXECUTE ${then.name}(${then.literals.join(", ")})`;
    let results: pg.QueryResult[];
    try {
      results = (await query(
        session,
        `${prepare}${inlined};\n${execute}`,
      )) as unknown as pg.QueryResult[];
    } catch (error) {
      // Whether the statement is prepared is unknown now (a failed query rolls back some of
      // its statements' effects and not others): the next try starts afresh.
      session.prepared = undefined;
      if (!session.broken) await this.unlock(session, name);
      throw error;
    }
    session.prepared ??= new Set();
    session.prepared.add(then.name);
    const [tried, after] = results.slice(-2);
    const taken = (tried?.rows[0] as { taken: boolean } | undefined)?.taken === true;
    return taken ? { taken, ...(after === undefined ? {} : { after }) } : { taken };
  }

  private async unlock(session: Session, name: string): Promise<void> {
    // A lost or closed session already freed the lock (and a newer one never had it).
    if (session.broken || this.closed) return;
    const values = [this.options.namespace, name];
    try {
      const timeout = this.timeoutToSet(session);
      try {
        await (timeout === undefined
          ? query(session, UNLOCK, values)
          : query(session, UNLOCK_AND_SET, [...values, timeout]));
      } catch (error) {
        if (timeout === undefined || !this.unknownSetting(error)) throw error;
        await query(session, UNLOCK, values);
      }
    } catch {
      // Whether the server still holds it is unknown; the next holder of this process would
      // re-enter it unseen. Ending the session frees it for sure (and this process's others:
      // a lock lost that way cannot corrupt anything, every write is a compare-and-set).
      await this.end(session);
    }
  }

  /** After a lock is released or given up: fewer leases, or none and a session to close. */
  private settle(): void {
    const session = this.session;
    if (session === undefined) return;
    void session.then(
      (opened) => this.applyLeases(opened),
      () => {},
    );
    if (this.leases.size === 0 && this.turns.size === 0) {
      // Idle, it must not keep a CLI run or a script from exiting (as the data pool's
      // allowExitOnIdle does for its connections).
      void session.then(
        (opened) => {
          if (this.leases.size === 0 && this.turns.size === 0) {
            (opened.client as RefCountedClient).unref();
          }
        },
        () => {},
      );
      clearTimeout(this.idleClose);
      this.idleClose = setTimeout(() => {
        if (this.leases.size > 0 || this.turns.size > 0 || this.session !== session) return;
        void session.then((opened) => this.end(opened)).catch(() => {});
      }, SESSION_IDLE_MS);
      this.idleClose.unref();
    }
  }

  /** The shortest lease held or being taken, in ms (0: none). */
  private shortestLease(): number {
    return this.leases.size === 0 ? 0 : Math.min(...this.leases.values());
  }

  /**
   * The `idle_session_timeout` the session needs (the shortest lease held or being taken, none
   * when there is none) when that is not the one last asked for, marked as asked for: the
   * caller sends it. Queries run in the order sent, so the last setting asked for is the one
   * in force.
   */
  private timeoutToSet(session: Session): string | undefined {
    if (this.noIdleTimeout) return undefined;
    const shortest = this.shortestLease();
    const idleTimeoutMs = shortest === 0 ? 0 : Math.max(1, Math.ceil(shortest));
    if (idleTimeoutMs === session.idleTimeoutMs) return undefined;
    session.idleTimeoutMs = idleTimeoutMs;
    return `${idleTimeoutMs}ms`;
  }

  /** Before PostgreSQL 14 there is no idle_session_timeout: only the connection's end frees a
   * lock. True (and remembered) when `error` says so. */
  private unknownSetting(error: unknown): boolean {
    if (errorCodeOf(error) !== UNDEFINED_OBJECT) return false;
    this.noIdleTimeout = true;
    return true;
  }

  /**
   * Keeps the session's `idle_session_timeout` at the shortest lease held or being taken
   * (`sendTimeout` false: the caller's next statement sets it), and keeps the session busy
   * meanwhile.
   */
  private applyLeases(session: Session, sendTimeout = true): void {
    if (session.broken) return;
    const shortest = this.shortestLease();
    const timeout = sendTimeout ? this.timeoutToSet(session) : undefined;
    if (timeout !== undefined) {
      query(session, SET_IDLE_TIMEOUT, [timeout]).catch((error: unknown) => {
        this.unknownSetting(error);
      });
    }
    const everyMs = Math.max(10, Math.floor(shortest / 3));
    if (shortest === 0) this.stopKeepAlive();
    else if (this.keepAlive?.everyMs !== everyMs || this.keepAlive.session !== session) {
      this.stopKeepAlive();
      // Keeps the session busy, so idle_session_timeout ends it only if this process stalls.
      const timer = setInterval(() => {
        if (!session.broken) query(session, "SELECT 1").catch(() => {});
      }, everyMs);
      timer.unref();
      this.keepAlive = { timer, everyMs, session };
    }
  }

  private stopKeepAlive(): void {
    clearInterval(this.keepAlive?.timer);
    this.keepAlive = undefined;
  }

  private async end(session: Session): Promise<void> {
    session.broken = true;
    if (this.keepAlive?.session === session) this.stopKeepAlive();
    if (this.opened === session) {
      this.opened = undefined;
      this.session = undefined;
    }
    // An idle session's socket is unref'd: ending it must hold the process until it is closed,
    // or a CLI run exits (status 0, nothing printed) while its store is still closing.
    (session.client as RefCountedClient).ref();
    await session.client.end().catch(() => {});
  }
}

/**
 * Runs `text` on the session once every query sent before it is done: one at a time, in order
 * (node-postgres queues them itself today, but deprecates relying on that).
 */
function query(session: Session, text: string, values?: unknown[]): Promise<pg.QueryResult> {
  const result = session.queue.then(() => session.client.query(text, values));
  session.queue = result.catch(() => undefined);
  return result;
}

function inProgress(name: string): RekeyError {
  return new RekeyError("ROTATION_IN_PROGRESS", `Lock "${name}" is held by another rotation`, {
    hint: "Another rotation is running; wait for it to finish and retry.",
  });
}

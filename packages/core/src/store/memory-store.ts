import { type Clock, systemClock } from "../clock.js";
import { RekeyError } from "../errors.js";
import { chainAuditEntry } from "./audit-chain.js";
import { deepFreeze, frozenCopy, thawedCopy } from "./freeze.js";
import { assertWritableStoreData } from "./schema.js";
import {
  type AuditEntry,
  type AuditEventInput,
  type CompareAndSetResult,
  type CredentialStore,
  emptyStoreData,
  type LockOptions,
  type StoreData,
  type StoreHealth,
  type StoreLock,
  type StoreSnapshot,
} from "./types.js";

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Data to start with (stored as version 1); empty and version 0 when absent. */
  initial?: StoreData;
  /** Decides when a lease has expired; timers still run on real time. */
  clock?: Clock;
}

interface Lease {
  token: symbol;
  expiresAt: number;
  expiryTimer: NodeJS.Timeout;
}

interface Waiter {
  leaseMs: number;
  grant(lease: Lease): void;
  giveUpTimer: NodeJS.Timeout;
}

interface LockState {
  holder: Lease | undefined;
  waiters: Waiter[];
}

/**
 * A credential store held in this process's memory: for tests, demos and embedding. Everything
 * is lost when the process ends.
 *
 * Writes copy what they are given and reads share one deep-frozen snapshot, so no caller can
 * change stored state by mutating an object.
 * Locks are leases that expire after `leaseMs` even if never released (nothing renews them:
 * there is no other process whose death we could notice), granted first come, first served.
 */
export class MemoryStore implements CredentialStore {
  readonly kind = "memory";
  readonly location = "memory";
  private snapshot: StoreSnapshot;
  private readonly audit: AuditEntry[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly locks = new Map<string, LockState>();
  private readonly clock: Clock;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.snapshot = deepFreeze({
      version: options.initial === undefined ? 0 : 1,
      data: thawedCopy(
        options.initial === undefined ? emptyStoreData() : assertWritableStoreData(options.initial),
      ),
    });
  }

  /** @throws RekeyError STORE_UNAVAILABLE after close(). */
  async read(): Promise<StoreSnapshot> {
    this.assertOpen();
    return this.snapshot;
  }

  /**
   * @throws RekeyError STORE_UNAVAILABLE after close(); INTERNAL when `data` does not match the
   *   store schema.
   */
  async compareAndSet(expectedVersion: number, data: StoreData): Promise<CompareAndSetResult> {
    this.assertOpen();
    const validated = assertWritableStoreData(data);
    if (expectedVersion !== this.snapshot.version) return { ok: false, current: this.snapshot };
    this.snapshot = deepFreeze({
      version: this.snapshot.version + 1,
      data: frozenCopy(validated),
    });
    this.notify();
    return { ok: true, snapshot: this.snapshot };
  }

  /** @throws RekeyError ROTATION_IN_PROGRESS when `waitMs` passes; STORE_UNAVAILABLE after close(). */
  lock(name: string, options: LockOptions): Promise<StoreLock> {
    this.assertOpen();
    const state = this.lockState(name);
    this.expireIfDue(name, state);
    const storeLock = (lease: Lease): StoreLock => ({
      name,
      release: async () => this.releaseLease(name, lease.token),
    });
    if (state.holder === undefined && state.waiters.length === 0) {
      return Promise.resolve(storeLock(this.grant(name, state, options.leaseMs)));
    }
    return new Promise<StoreLock>((resolve, reject) => {
      const waiter: Waiter = {
        leaseMs: options.leaseMs,
        grant: (lease) => {
          clearTimeout(waiter.giveUpTimer);
          resolve(storeLock(lease));
        },
        giveUpTimer: setTimeout(() => {
          state.waiters.splice(state.waiters.indexOf(waiter), 1);
          reject(
            new RekeyError("ROTATION_IN_PROGRESS", `Lock "${name}" is held by another rotation`, {
              hint: "Another rotation is running; wait for it to finish and retry.",
            }),
          );
        }, options.waitMs),
      };
      state.waiters.push(waiter);
    });
  }

  /** @throws RekeyError STORE_UNAVAILABLE after close(). */
  async appendAudit(event: AuditEventInput): Promise<AuditEntry> {
    this.assertOpen();
    const entry = chainAuditEntry(this.audit.at(-1), structuredClone(event));
    this.audit.push(entry);
    return structuredClone(entry);
  }

  /** @throws RekeyError STORE_UNAVAILABLE after close(). */
  async readAudit(): Promise<AuditEntry[]> {
    this.assertOpen();
    return structuredClone(this.audit);
  }

  /** Listeners run in a microtask after each successful compareAndSet. Throws nothing. */
  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Memory is always writable while open. @throws RekeyError STORE_UNAVAILABLE after close(). */
  async checkWritable(): Promise<void> {
    this.assertOpen();
  }

  async health(): Promise<StoreHealth> {
    const problems = this.closed ? ["the store is closed"] : [];
    return { ok: problems.length === 0, kind: this.kind, location: this.location, problems };
  }

  /** Ends every lease and wait, and drops listeners. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    for (const [name, state] of this.locks) {
      if (state.holder !== undefined) clearTimeout(state.holder.expiryTimer);
      for (const waiter of state.waiters) clearTimeout(waiter.giveUpTimer);
      this.locks.delete(name);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new RekeyError("STORE_UNAVAILABLE", "The memory store is closed");
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      queueMicrotask(() => {
        if (!this.listeners.has(listener)) return;
        try {
          listener();
        } catch {
          // A listener's failure is its own; it must not break the writer or other listeners.
        }
      });
    }
  }

  private lockState(name: string): LockState {
    let state = this.locks.get(name);
    if (state === undefined) {
      state = { holder: undefined, waiters: [] };
      this.locks.set(name, state);
    }
    return state;
  }

  private grant(name: string, state: LockState, leaseMs: number): Lease {
    const token = Symbol(name);
    const expiryTimer = setTimeout(() => this.releaseLease(name, token), leaseMs);
    // A forgotten lease must not keep the process alive; waiters keep their own timers.
    expiryTimer.unref();
    const lease: Lease = { token, expiresAt: this.clock.now() + leaseMs, expiryTimer };
    state.holder = lease;
    return lease;
  }

  private expireIfDue(name: string, state: LockState): void {
    if (state.holder !== undefined && state.holder.expiresAt <= this.clock.now()) {
      this.releaseLease(name, state.holder.token);
    }
  }

  /** Ends the lease `token` if it is still the holder, then hands the lock to the next waiter. */
  private releaseLease(name: string, token: symbol): void {
    const state = this.locks.get(name);
    if (state === undefined || state.holder?.token !== token) return;
    clearTimeout(state.holder.expiryTimer);
    state.holder = undefined;
    const next = state.waiters.shift();
    if (next !== undefined) {
      next.grant(this.grant(name, state, next.leaseMs));
    } else {
      this.locks.delete(name);
    }
  }
}

/** Creates a {@link MemoryStore}. @throws RekeyError INTERNAL when `initial` is not valid data. */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options);
}

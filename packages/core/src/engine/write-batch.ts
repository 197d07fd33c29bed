import { RekeyError } from "../errors.js";
import type {
  AuditEventInput,
  CredentialStore,
  StoreData,
  StoreSnapshot,
  WriteOptions,
} from "../store/types.js";
import { draftOf } from "./principal-records.js";

/** One caller's change, waiting for the next write of its store. */
interface PendingChange {
  mutate: (draft: StoreData) => unknown;
  afterWrite: ((snapshot: StoreSnapshot) => void) | undefined;
  /** False when the caller can lose this change to a crash (see WriteOptions.durable). */
  durable: boolean;
  /** Entries to append atomically with the write (WriteOptions.audit). */
  audit: readonly AuditEventInput[] | undefined;
  resolve: (written: Written<unknown>) => void;
  reject: (error: unknown) => void;
}

interface WriteQueue {
  pending: PendingChange[];
  writing: boolean;
  /**
   * The newest snapshot this process has seen of the store: one a caller read and passed as
   * `base`, or one a compare-and-set returned. The next write is tried on it without reading
   * first: compare-and-set checks the version, so a snapshot another process has since replaced
   * only costs a refused attempt, which returns the current one to try again on.
   */
  latest: StoreSnapshot | undefined;
}

/** What a write returns: the value `mutate` returned, and the snapshot written. */
export interface Written<T> {
  value: T;
  snapshot: StoreSnapshot;
}

/** Attempts at one write before a store that keeps conflicting is reported. */
const MAX_ATTEMPTS = 50;

const queues = new WeakMap<CredentialStore, WriteQueue>();

/**
 * Applies `mutate` to a fresh read of `store` and writes it with compare-and-set, retrying on
 * conflict; resolves with what `mutate` returned in the attempt that was written.
 *
 * Changes asked for in one process while a write of the same store is under way are written
 * together, in the order asked, as one compare-and-set: as if each ran just after the one
 * before. Without that, a burst of 100 writers in one process (100 Idempotency-Key records)
 * made 100 competing writes of the whole document, most of which conflicted and retried: 15 s
 * and more on PostgreSQL. `mutate` may run several times, so it must only change the draft it
 * is given; one that throws fails its own caller only.
 *
 * @throws RekeyError STORE_UNAVAILABLE when the store stays contended, or any error of the store.
 */
export function writeInBatch<T>(
  store: CredentialStore,
  mutate: (draft: StoreData) => T,
  afterWrite?: (snapshot: StoreSnapshot) => void,
  base?: StoreSnapshot,
  options: WriteOptions = {},
): Promise<Written<T>> {
  let queue = queues.get(store);
  if (queue === undefined) {
    queue = { pending: [], writing: false, latest: undefined };
    queues.set(store, queue);
  }
  if (base !== undefined) noteSnapshot(queue, base);
  const written = new Promise<Written<T>>((resolve, reject) => {
    queue.pending.push({
      mutate,
      afterWrite,
      durable: options.durable !== false,
      audit: options.audit,
      resolve: resolve as (written: Written<unknown>) => void,
      reject,
    });
  });
  if (!queue.writing) void drain(store, queue);
  return written;
}

/** Keeps the newer of the queue's snapshot and `snapshot`. */
function noteSnapshot(queue: WriteQueue, snapshot: StoreSnapshot): void {
  if (queue.latest === undefined || snapshot.version >= queue.latest.version) {
    queue.latest = snapshot;
  }
}

/** Writes what is pending, batch after batch, until nothing is. */
async function drain(store: CredentialStore, queue: WriteQueue): Promise<void> {
  queue.writing = true;
  try {
    while (queue.pending.length > 0) await writeTogether(store, queue, queue.pending.splice(0));
  } finally {
    queue.writing = false;
  }
}

/** Writes `batch` as one compare-and-set, settling each caller's promise. Throws nothing. */
async function writeTogether(
  store: CredentialStore,
  queue: WriteQueue,
  batch: PendingChange[],
): Promise<void> {
  let live = batch;
  for (let attempt = 0; attempt < MAX_ATTEMPTS && live.length > 0; attempt++) {
    let snapshot: StoreSnapshot;
    if (queue.latest !== undefined) {
      snapshot = queue.latest;
    } else {
      try {
        snapshot = await store.read();
      } catch (error) {
        for (const change of live) change.reject(error);
        return;
      }
    }
    const draft = draftOf(snapshot.data);
    const results: unknown[] = [];
    let failed: PendingChange | undefined;
    for (const change of live) {
      try {
        results.push(change.mutate(draft));
      } catch (error) {
        change.reject(error);
        failed = change;
        break;
      }
    }
    if (failed !== undefined) {
      // The draft holds part of its change: start again without it (not a conflict).
      live = live.filter((change) => change !== failed);
      attempt--;
      continue;
    }
    let outcome: Awaited<ReturnType<CredentialStore["compareAndSet"]>>;
    try {
      // One change that must be durable makes the whole batch durable.
      const durable = live.some((change) => change.durable);
      // Each change's entries, in the order the changes were asked for.
      const audit = live.flatMap((change) => change.audit ?? []);
      outcome = await store.compareAndSet(snapshot.version, draft, {
        ...(durable ? {} : { durable: false }),
        ...(audit.length === 0 ? {} : { audit }),
      });
    } catch (error) {
      // Whatever the store did, the next write starts from a fresh read.
      queue.latest = undefined;
      for (const change of live) change.reject(error);
      return;
    }
    if (outcome.ok) {
      noteSnapshot(queue, outcome.snapshot);
      for (const [index, change] of live.entries()) {
        try {
          change.afterWrite?.(outcome.snapshot);
          change.resolve({ value: results[index], snapshot: outcome.snapshot });
        } catch (error) {
          change.reject(error);
        }
      }
      return;
    }
    // Another process won: its snapshot is the next attempt's base. The first refusal is
    // retried at once (the snapshot was only one this process had seen, not a race lost);
    // later ones back off a little so a crowd of writers spreads out.
    queue.latest = outcome.current;
    if (attempt === 0) continue;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (attempt + 1)));
  }
  const contended = new RekeyError(
    "STORE_UNAVAILABLE",
    "The credential store stayed busy: too many concurrent writers",
    { hint: "Retry in a moment." },
  );
  for (const change of live) change.reject(contended);
}

import type {
  AuditEntry,
  AuditEventInput,
  CompareAndSetResult,
  CredentialStore,
  LockOptions,
  ReadOptions,
  StoreData,
  StoreHealth,
  StoreLock,
  StoreSnapshot,
  WriteOptions,
} from "../store/types.js";

/** How often each store operation was called. */
export interface StoreCounts {
  reads: number;
  writes: number;
  locks: number;
  auditAppends: number;
  auditReads: number;
}

/**
 * A store that counts what is asked of it and passes everything to a real store: what a test
 * asserts "reads per rotation" with, or a benchmark prints. Not a fake: every answer is the
 * inner store's.
 */
export class CountingStore implements CredentialStore {
  private counts: StoreCounts = zeroCounts();

  constructor(private readonly inner: CredentialStore) {}

  get kind(): string {
    return this.inner.kind;
  }

  get location(): string {
    return this.inner.location;
  }

  get appendsAuditWithWrite(): boolean | undefined {
    return this.inner.appendsAuditWithWrite;
  }

  /** The counts since the last `reset`. */
  snapshot(): StoreCounts {
    return { ...this.counts };
  }

  reset(): void {
    this.counts = zeroCounts();
  }

  read(options?: ReadOptions): Promise<StoreSnapshot> {
    this.counts.reads++;
    return this.inner.read(options);
  }

  compareAndSet(
    expectedVersion: number,
    data: StoreData,
    options?: WriteOptions,
  ): Promise<CompareAndSetResult> {
    this.counts.writes++;
    // Entries appended by the write count as appends (the store makes them, in the write).
    this.counts.auditAppends += options?.audit?.length ?? 0;
    return this.inner.compareAndSet(expectedVersion, data, options);
  }

  async lock(name: string, options: LockOptions): Promise<StoreLock> {
    this.counts.locks++;
    const lock = await this.inner.lock(name, options);
    // A snapshot handed back with the lock is a read (made in the lock's round trip).
    if (lock.snapshot !== undefined) this.counts.reads++;
    return lock;
  }

  appendAudit(event: AuditEventInput): Promise<AuditEntry> {
    this.counts.auditAppends++;
    return this.inner.appendAudit(event);
  }

  readAudit(): Promise<AuditEntry[]> {
    this.counts.auditReads++;
    return this.inner.readAudit();
  }

  watch(listener: () => void): () => void {
    return this.inner.watch(listener);
  }

  checkWritable(): Promise<void> {
    return this.inner.checkWritable();
  }

  prepareAudit(): Promise<{ movedAside?: string }> {
    return this.inner.prepareAudit?.() ?? Promise.resolve({});
  }

  health(): Promise<StoreHealth> {
    return this.inner.health();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function zeroCounts(): StoreCounts {
  return { reads: 0, writes: 0, locks: 0, auditAppends: 0, auditReads: 0 };
}

/**
 * A credential store that counts what a benchmark asks of it (reads, compare-and-set writes,
 * locks, audit appends) and passes everything to the real store it wraps; and a counter of
 * fsync calls made by this process while it is switched on. For printing operations per
 * rotation beside the times; the counts are asserted in core's store-operations test.
 */
import fs from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class CountingStore {
  constructor(inner) {
    this.inner = inner;
    this.counts = zero();
  }
  get kind() {
    return this.inner.kind;
  }
  get location() {
    return this.inner.location;
  }
  get appendsAuditWithWrite() {
    return this.inner.appendsAuditWithWrite;
  }
  reset() {
    this.counts = zero();
  }
  read(options) {
    this.counts.reads++;
    return this.inner.read(options);
  }
  compareAndSet(version, data, options) {
    this.counts.writes++;
    // Entries appended by the write count as appends (the store makes them, in the write).
    this.counts.auditAppends += options?.audit?.length ?? 0;
    return this.inner.compareAndSet(version, data, options);
  }
  async lock(name, options) {
    this.counts.locks++;
    const lock = await this.inner.lock(name, options);
    // A snapshot handed back with the lock is a read (made in the lock's round trip).
    if (lock.snapshot !== undefined) this.counts.reads++;
    return lock;
  }
  appendAudit(event) {
    this.counts.auditAppends++;
    return this.inner.appendAudit(event);
  }
  readAudit() {
    return this.inner.readAudit();
  }
  watch(listener) {
    return this.inner.watch(listener);
  }
  checkWritable() {
    return this.inner.checkWritable();
  }
  prepareAudit() {
    return this.inner.prepareAudit?.() ?? Promise.resolve({});
  }
  health() {
    return this.inner.health();
  }
  close() {
    return this.inner.close();
  }
}

function zero() {
  return { reads: 0, writes: 0, locks: 0, auditAppends: 0, fsyncs: 0 };
}

/**
 * Counts fsyncs (every one the file store makes) while `work` runs: `FileHandle#sync` and
 * `#datasync`, and `fs.fsync` / `fs.fdatasync` on node:fs's module object (what the store's
 * writes and audit appends call); the functions are put back after.
 */
export async function countFsyncs(work) {
  const probe = await open(join(tmpdir(), `rekey-bench-fsync-probe-${process.pid}`), "w");
  const prototype = Object.getPrototypeOf(probe);
  await probe.close();
  const patched = [
    [prototype, "sync"],
    [prototype, "datasync"],
    [fs, "fsync"],
    [fs, "fdatasync"],
  ];
  const originals = patched.map(([owner, name]) => owner[name]);
  let fsyncs = 0;
  for (const [index, [owner, name]] of patched.entries()) {
    const original = originals[index];
    owner[name] = function counted(...args) {
      fsyncs++;
      return original.apply(this, args);
    };
  }
  try {
    await work();
  } finally {
    for (const [index, [owner, name]] of patched.entries()) owner[name] = originals[index];
  }
  return fsyncs;
}

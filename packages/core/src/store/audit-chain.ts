import { createHash } from "node:crypto";
import type { AuditEntry, AuditEventInput } from "./types.js";

/**
 * The audit log is a hash chain: each entry carries the SHA-256 of its predecessor, so editing,
 * removing or reordering an entry breaks every link after it. Entries hold fingerprints only.
 */

/** `prevHash` of the first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** JSON with object keys sorted at every level and `undefined` members left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item === undefined ? "null" : canonicalJson(item))).join(",")}]`;
  }
  const members = Object.entries(value as Record<string, unknown>)
    .filter(([, member]) => member !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, member]) => `${JSON.stringify(key)}:${canonicalJson(member)}`);
  return `{${members.join(",")}}`;
}

/** SHA-256 hex over the canonical JSON of an entry without its `hash`. Throws nothing. */
export function computeAuditHash(entry: Omit<AuditEntry, "hash">): string {
  const { hash: _ignored, ...withoutHash } = entry as AuditEntry;
  return createHash("sha256").update(canonicalJson(withoutHash), "utf8").digest("hex");
}

/** The entry that follows `prev` (or starts the log) for `event`. Throws nothing. */
export function chainAuditEntry(prev: AuditEntry | undefined, event: AuditEventInput): AuditEntry {
  const unhashed: Omit<AuditEntry, "hash"> = {
    ...event,
    seq: prev === undefined ? 1 : prev.seq + 1,
    prevHash: prev === undefined ? GENESIS_HASH : prev.hash,
  };
  return { ...unhashed, hash: computeAuditHash(unhashed) };
}

/** The result of {@link verifyAuditChain}. */
export type AuditChainVerdict =
  | { ok: true; count: number }
  | { ok: false; count: number; brokenAt: number; reason: string };

/**
 * Checks the whole chain and reports the first broken link. `count` is how many entries were
 * given; `brokenAt` is the `seq` the first bad entry should have had (its position + 1, so a
 * removed entry is reported where the gap is). Throws nothing.
 */
export function verifyAuditChain(entries: readonly AuditEntry[]): AuditChainVerdict {
  let prevHash = GENESIS_HASH;
  for (const [index, entry] of entries.entries()) {
    const expectedSeq = index + 1;
    const broken = (reason: string): AuditChainVerdict => ({
      ok: false,
      count: entries.length,
      brokenAt: expectedSeq,
      reason,
    });
    if (entry.seq !== expectedSeq) {
      return broken(`expected seq ${expectedSeq}, found ${entry.seq}`);
    }
    if (entry.prevHash !== prevHash) {
      return broken(
        index === 0
          ? "the first entry's prevHash is not the genesis hash"
          : `prevHash does not match the hash of entry ${expectedSeq - 1}`,
      );
    }
    if (computeAuditHash(entry) !== entry.hash) {
      return broken("hash does not match the entry's content");
    }
    prevHash = entry.hash;
  }
  return { ok: true, count: entries.length };
}

import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  chainAuditEntry,
  computeAuditHash,
  GENESIS_HASH,
  verifyAuditChain,
} from "./audit-chain.js";
import type { AuditEntry, AuditEventInput } from "./types.js";

const event = (requestId: string): AuditEventInput => ({
  at: "2025-01-01T00:00:00.000Z",
  surface: "mcp",
  profile: "default",
  principal: "agent:7",
  action: "rotate",
  outcome: "success",
  requestId,
});

function chain(length: number): AuditEntry[] {
  const entries: AuditEntry[] = [];
  for (let index = 0; index < length; index++) {
    entries.push(chainAuditEntry(entries.at(-1), event(`req-${index}`)));
  }
  return entries;
}

describe("audit chain", () => {
  it("hashes canonical JSON, so key order and absent members do not matter", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}',
    );
    const [first] = chain(1);
    if (first === undefined) throw new Error("one entry");
    const { hash, ...rest } = first;
    const reordered = Object.fromEntries(Object.entries(rest).reverse()) as typeof rest;
    expect(computeAuditHash(reordered)).toBe(hash);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("starts at seq 1 from the genesis hash and links each entry to the previous", () => {
    const entries = chain(3);
    expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3]);
    expect(entries[0]?.prevHash).toBe(GENESIS_HASH);
    expect(entries[2]?.prevHash).toBe(entries[1]?.hash);
    expect(verifyAuditChain(entries)).toEqual({ ok: true, count: 3 });
    expect(verifyAuditChain([])).toEqual({ ok: true, count: 0 });
  });

  it("reports an edited entry at its own seq", () => {
    const entries = chain(5);
    const edited = entries.map((entry) =>
      entry.seq === 3 ? { ...entry, newFingerprint: "fp:ffffffffffff" } : entry,
    );
    expect(verifyAuditChain(edited)).toEqual({
      ok: false,
      count: 5,
      brokenAt: 3,
      reason: "hash does not match the entry's content",
    });
  });

  it("reports a re-hashed edit at the next entry, whose prevHash no longer matches", () => {
    const entries = chain(5);
    const rehashed = entries.map((entry) => {
      if (entry.seq !== 3) return entry;
      const { hash: _old, ...rest } = { ...entry, outcome: "failure" as const };
      return { ...rest, hash: computeAuditHash(rest) };
    });
    expect(verifyAuditChain(rehashed)).toMatchObject({ ok: false, brokenAt: 4 });
  });

  it("reports a removed entry as a seq gap, and a forged first entry", () => {
    const entries = chain(4);
    expect(verifyAuditChain(entries.filter((entry) => entry.seq !== 2))).toMatchObject({
      ok: false,
      brokenAt: 2,
      reason: "expected seq 2, found 3",
    });
    expect(verifyAuditChain(entries.slice(1))).toMatchObject({ ok: false, brokenAt: 1 });
    const forged = { ...chainAuditEntry(undefined, event("x")), prevHash: "1".repeat(64) };
    expect(verifyAuditChain([forged])).toMatchObject({
      ok: false,
      brokenAt: 1,
      reason: "the first entry's prevHash is not the genesis hash",
    });
  });
});

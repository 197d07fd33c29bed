import { describe, expect, it } from "vitest";
import {
  auditEntrySchema,
  auditEntryView,
  healthSchema,
  healthView,
  historyView,
  recordPrincipalView,
} from "./vocabulary.js";

describe("the vocabulary's record principals", () => {
  it("names a stored record by its principal, its label and an operator's id", () => {
    expect(recordPrincipalView("agent:7")).toEqual({
      principal: { kind: "agent", agent_id: 7 },
      label: "agent 7",
    });
    expect(recordPrincipalView("operator:12")).toEqual({
      principal: { kind: "operator" },
      label: "operator",
      operator_id: 12,
    });
    // A record written before operators had ids names no id, and shows none.
    expect(recordPrincipalView("operator")).toEqual({
      principal: { kind: "operator" },
      label: "operator",
    });
  });

  it("turns an audit entry into the strict schema, snake_case, without absent fields", () => {
    const entry = {
      seq: 3,
      at: "2026-12-02T10:00:00.000Z",
      surface: "cli" as const,
      profile: "default",
      principal: "agent:7",
      action: "rotate" as const,
      outcome: "success" as const,
      oldFingerprint: "fp:000000000001",
      newFingerprint: "fp:000000000002",
      requestId: "2f0b7e43-4f59-4d38-9e7e-7c4cdb1c2a10",
      prevHash: "0".repeat(64),
      hash: "a".repeat(64),
    };
    const view = auditEntrySchema.strict().parse(auditEntryView(entry));
    expect(view).toMatchObject({
      principal: { kind: "agent", agent_id: 7 },
      old_fingerprint: "fp:000000000001",
      request_id: entry.requestId,
      prev_hash: entry.prevHash,
    });
    expect(Object.values(view)).not.toContain(undefined);
    expect(historyView([entry], { ok: false, count: 3, brokenAt: 2, reason: "hash" })).toEqual({
      entries: [view],
      verification: { ok: false, count: 3, broken_at: 2, reason: "hash" },
    });
  });

  it("reports health with the store's encryption in the vocabulary's words", () => {
    const view = healthView({
      ok: true,
      store: {
        ok: true,
        readable: true,
        kind: "file",
        location: "/tmp/rekey",
        problems: [],
        encryption: { state: "encrypted", clearKeys: 0, keyId: "0123456789abcdef" },
      },
      upstream: { ok: true, baseUrl: "http://127.0.0.1:1" },
    });
    expect(healthSchema.strict().parse(view)).toEqual({
      ok: true,
      store: {
        ok: true,
        readable: true,
        kind: "file",
        location: "/tmp/rekey",
        problems: [],
        encryption: { state: "encrypted", clear_keys: 0, key_id: "0123456789abcdef" },
      },
      upstream: { ok: true, base_url: "http://127.0.0.1:1" },
    });
  });
});

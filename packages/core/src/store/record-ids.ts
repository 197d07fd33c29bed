import { createHash } from "node:crypto";

/**
 * How the store names principals: one record per principal per faucet, whatever profile,
 * process or front end reaches it.
 */

/** A record's principal: "operator:12", "agent:7", or "operator" (a migrated key of unknown id). */
export const RECORD_PRINCIPAL_PATTERN = /^(operator(:[1-9]\d{0,9})?|agent:[1-9]\d{0,9})$/;

/**
 * The faucet a URL names, as records are keyed: origin (scheme, lower-case host, port) and path,
 * without a trailing slash, query or fragment. Two spellings of one endpoint share records.
 */
export function faucetIdOf(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** The key of a principal's record: its faucet and principal, e.g. `https://x/api#agent:7`. */
export function recordIdOf(faucet: string, principal: string): string {
  return `${faucetIdOf(faucet)}#${principal}`;
}

/**
 * Whether a record sits under its own id: its faucet (as stored, already normalised) and its
 * principal. Every reader and writer of a store checks this.
 */
export function isFiledUnderOwnId(
  id: string,
  record: { readonly faucet: string; readonly principal: string },
): boolean {
  return id === `${record.faucet}#${record.principal}`;
}

/** The record principal of an operator with a known id. */
export function operatorRecordPrincipal(operatorId: number | undefined): string {
  return operatorId === undefined ? "operator" : `operator:${operatorId}`;
}

/**
 * The slot of an idempotency key within a scope (the record id of the principal acting, or a
 * profile for one that holds no key): the same key sent for two principals never collides.
 */
export function idempotencySlot(scope: string, idempotencyKey: string): string {
  return scopePrefix(scope) + sha256Hex(idempotencyKey).slice(0, 32);
}

/** The first half of an idempotency slot: 16 hex digits of the scope's SHA-256. */
export function scopePrefix(scope: string): string {
  return sha256Hex(scope).slice(0, 16);
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

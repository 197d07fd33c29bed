import { createHash } from "node:crypto";

/**
 * A key's public name: `lf_…` plus the first 12 hex digits of its SHA-256.
 * Safe to log, show and store beside the key; it cannot be turned back into the key.
 */
export function fingerprint(key: string): string {
  return `fp:${createHash("sha256").update(key, "utf8").digest("hex").slice(0, 12)}`;
}

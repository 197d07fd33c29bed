import { createHash } from "node:crypto";
import { RekeyError } from "../../errors.js";

/**
 * A master key (the key-encryption key): 32 random bytes, named by a key id that every
 * ciphertext carries, so a store says which key it needs without revealing it.
 */
export interface MasterKey {
  /** 16 hex digits of a SHA-256 of the key: names it, reveals nothing usable. */
  readonly id: string;
  readonly bytes: Buffer;
  /** Where it came from, for messages ("REKEY_MASTER_KEY", a file path...); never the key. */
  readonly source: string;
}

/** The length of a master key: AES-256. */
export const MASTER_KEY_BYTES = 32;

/** The key id of `bytes`. Throws nothing. */
export function keyIdOf(bytes: Buffer): string {
  return createHash("sha256")
    .update("rekey master key id\0")
    .update(bytes)
    .digest("hex")
    .slice(0, 16);
}

/**
 * Reads a master key written as base64 (standard or url-safe, surrounding white space ignored).
 *
 * @throws RekeyError STORE_LOCKED when it is not 32 bytes of base64 (a truncated or edited key
 *   file, a wrong value in the variable); the message names `source`, never the text.
 */
export function parseMasterKey(text: string, source: string): MasterKey {
  const trimmed = text.trim();
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)
    ? Buffer.from(trimmed.replace(/-/g, "+").replace(/_/g, "/"), "base64")
    : Buffer.alloc(0);
  if (bytes.length !== MASTER_KEY_BYTES) {
    throw new RekeyError(
      "STORE_LOCKED",
      `The master key from ${source} is not ${MASTER_KEY_BYTES} bytes of base64 (truncated or edited?)`,
      {
        hint: "Give the store's master key as 32 bytes of base64 (e.g. `openssl rand -base64 32` made it); restore the key file from your backup if it was cut short.",
        details: { keySource: source },
      },
    );
  }
  return { id: keyIdOf(bytes), bytes, source };
}

/** The text a master key is written as (base64 and a newline). Throws nothing. */
export function formatMasterKey(key: MasterKey): string {
  return `${key.bytes.toString("base64")}\n`;
}

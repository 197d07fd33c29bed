import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** An API key: `lf_` then 43 base64url characters (32 random bytes). */
export const API_KEY_PATTERN = /^lf_[A-Za-z0-9_-]{43}$/;

/** Issues a fresh API key. */
export function generateApiKey(): string {
  return `lf_${randomBytes(32).toString("base64url")}`;
}

/** Issues a fresh recovery code: `lfr_` then 43 base64url characters. */
export function generateRecoveryCode(): string {
  return `lfr_${randomBytes(32).toString("base64url")}`;
}

/** The SHA-256 hex digest the sandbox stores in place of a key or recovery code. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** A random 32-byte hex string, shaped like a Lightning payment hash. */
export function randomPaymentHash(): string {
  return randomBytes(32).toString("hex");
}

/**
 * The key that seals a replayable reply. Derived from the raw credential under a label, so
 * it differs from the stored hash: only someone holding the credential can open the reply,
 * and neither memory nor the data file ever holds a raw key.
 */
function sealingKey(credential: string): Buffer {
  return createHash("sha256").update("rekey-sandbox replay v1\0").update(credential).digest();
}

/** Encrypts `plaintext` (AES-256-GCM) with a key only `credential` can rebuild. */
export function seal(credential: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(credential), iv);
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

/** Opens what {@link seal} produced; `undefined` when the credential does not match. */
export function unseal(credential: string, sealed: string): string | undefined {
  const bytes = Buffer.from(sealed, "base64");
  if (bytes.length < 28) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", sealingKey(credential), bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

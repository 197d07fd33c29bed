import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import type { MasterKey } from "./master-key.js";

/**
 * One secret sealed with AES-256-GCM: `rk1:<key id>:<base64url of iv, ciphertext, tag>`.
 *
 * The key is not the master key itself but one derived from it for the store (HKDF-SHA256,
 * salt = the store's id): a master key shared by several stores never encrypts two stores'
 * secrets with the same key. The additional authenticated data names the store and the place
 * of the secret (record id and field), so a ciphertext moved to another principal, another
 * field or another store fails to decrypt instead of handing over the wrong key.
 */

const PREFIX = "rk1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEALED_PATTERN = /^rk1:([0-9a-f]{16}):([A-Za-z0-9_-]+)$/;

/** True when `value` is a sealed secret (not a clear one). Throws nothing. */
export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** The key id a sealed secret names, or undefined when it is not one. Throws nothing. */
export function sealedKeyId(value: string): string | undefined {
  return SEALED_PATTERN.exec(value)?.[1];
}

const derivedKeys = new WeakMap<Buffer, Map<string, Buffer>>();

/** The store's data key under `master`, derived once per (master key, store). */
function storeKey(master: MasterKey, storeId: string): Buffer {
  let byStore = derivedKeys.get(master.bytes);
  if (byStore === undefined) {
    byStore = new Map();
    derivedKeys.set(master.bytes, byStore);
  }
  let key = byStore.get(storeId);
  if (key === undefined) {
    key = Buffer.from(hkdfSync("sha256", master.bytes, storeId, "rekey store data key v1", 32));
    byStore.set(storeId, key);
  }
  return key;
}

function additionalData(storeId: string, place: string): Buffer {
  return Buffer.from(`rekey sealed secret v1\0${storeId}\0${place}`, "utf8");
}

/** Seals `secret` for `place` (record id and field) of store `storeId`. Throws nothing. */
export function sealSecret(
  secret: string,
  master: MasterKey,
  storeId: string,
  place: string,
): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", storeKey(master, storeId), iv);
  cipher.setAAD(additionalData(storeId, place));
  const body = Buffer.concat([
    iv,
    cipher.update(secret, "utf8"),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return `${PREFIX}${master.id}:${body.toString("base64url")}`;
}

/** Why a sealed secret did not open. */
export type OpenFailure = "malformed" | "unknown-key" | "not-authentic";

/**
 * Opens a sealed secret with whichever of `keys` it names. Returns the secret, or why not:
 * `unknown-key` (sealed under a key not given), `not-authentic` (the right key, but the bytes
 * were changed or belong to another place or store), `malformed`. Throws nothing.
 */
export function openSecret(
  sealed: string,
  keys: readonly MasterKey[],
  storeId: string,
  place: string,
): { ok: true; secret: string } | { ok: false; failure: OpenFailure; keyId?: string } {
  const match = SEALED_PATTERN.exec(sealed);
  if (match === null) return { ok: false, failure: "malformed" };
  const [, keyId = "", encoded = ""] = match;
  const master = keys.find((key) => key.id === keyId);
  if (master === undefined) return { ok: false, failure: "unknown-key", keyId };
  const body = Buffer.from(encoded, "base64url");
  if (body.length < IV_BYTES + TAG_BYTES) return { ok: false, failure: "malformed", keyId };
  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      storeKey(master, storeId),
      body.subarray(0, IV_BYTES),
    );
    decipher.setAAD(additionalData(storeId, place));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const secret = Buffer.concat([
      decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
    return { ok: true, secret };
  } catch {
    return { ok: false, failure: "not-authentic", keyId };
  }
}

import { z } from "zod";
import { RekeyError } from "../../errors.js";
import type { MasterKey } from "./master-key.js";
import { openSecret, sealSecret } from "./sealed-secret.js";

/**
 * A backup a migration keeps of a store file it rewrites (`credentials.schema-N.json`), sealed
 * whole under the master key: a backup holds every key, so it is no less a secret than the
 * store. `openSealedBackup` gives the original text back, byte for byte.
 */

const sealedBackupSchema = z.strictObject({
  rekeySealedBackup: z.literal(1),
  storeId: z.string().min(1),
  name: z.string().min(1),
  sealed: z.string().min(1),
});

/** True when `text` is a sealed backup. Throws nothing. */
export function isSealedBackup(text: string): boolean {
  try {
    return sealedBackupSchema.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
}

/** The file text of `original` sealed for backup file `name` of store `storeId`. Throws nothing. */
export function sealBackup(
  original: string,
  master: MasterKey,
  storeId: string,
  name: string,
): string {
  const sealed = sealSecret(original, master, storeId, `backup:${name}`);
  return `${JSON.stringify({ rekeySealedBackup: 1, storeId, name, sealed })}\n`;
}

/**
 * The original text of a sealed backup.
 *
 * @throws RekeyError STORE_CORRUPT (not a sealed backup, or changed); STORE_LOCKED (sealed
 *   under a master key not given).
 */
export function openSealedBackup(text: string, keys: readonly MasterKey[], source: string): string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  const parsed = sealedBackupSchema.safeParse(raw);
  if (!parsed.success)
    throw new RekeyError("STORE_CORRUPT", `${source} is not a sealed rekey backup`);
  const { storeId, name, sealed } = parsed.data;
  const opened = openSecret(sealed, keys, storeId, `backup:${name}`);
  if (opened.ok) return opened.secret;
  if (opened.failure === "unknown-key") {
    throw new RekeyError("STORE_LOCKED", `${source} is sealed under master key ${opened.keyId}`, {
      hint: "Give the master key the store had when this backup was made.",
    });
  }
  throw new RekeyError("STORE_CORRUPT", `${source} does not decrypt (changed or truncated)`);
}

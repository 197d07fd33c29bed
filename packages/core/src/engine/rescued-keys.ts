import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { heldFingerprintsOf } from "../delivery/known-keys.js";
import { principalLabel } from "../principal.js";
import { faucetIdOf, recordIdOf } from "../store/record-ids.js";
import { DEFAULT_PROFILE } from "../store/schema.js";
import type { DeepReadonly, PrincipalRecord } from "../store/types.js";
import { type ProfileView, principalOfRecord } from "./principal-records.js";
import { ownRescueFile, type RescueFile, type RescueStore, readRescueFile } from "./rescue.js";
import type { RescuedKey } from "./types.js";

/**
 * The rescue files in `dir` that hold a key of the view's faucet the store does not hold: a
 * registration, rotation or recovery whose key the store refused. Until imported such a key is
 * nowhere else, so status and doctor show each (by fingerprint, never the key). Files that are
 * not rescue files, that another faucet's profile owns, or that another store wrote for a
 * principal this one does not hold (the rescue directory is shared by every store of the
 * user) are left out. `settle` sees each of this store's own files first (another account's
 * recovery whose audit entry may be missing).
 */
export async function rescuedKeysIn(
  dir: string,
  store: RescueStore,
  view: ProfileView,
  settle?: (path: string, file: RescueFile) => Promise<unknown>,
): Promise<RescuedKey[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const faucet = faucetIdOf(view.faucet);
  const found: RescuedKey[] = [];
  for (const name of names.filter((entry) => entry.endsWith(".json")).sort()) {
    const path = join(dir, name);
    const file = await readRescueFile(path).catch(() => undefined);
    if (file === undefined || faucetIdOf(file.faucet) !== faucet) continue;
    const record = view.data.principals[recordIdOf(faucet, file.principal)];
    const own = ownRescueFile(file, store);
    if (!own && record === undefined) continue;
    // Only the store a file names settles the entry it owes (one log, one entry).
    if (own) await settle?.(path, file);
    if (record?.fingerprint === file.fingerprint || supersedes(record, file)) continue;
    found.push({
      path,
      principal: file.principal,
      label: principalLabel(principalOfRecord(file.principal)),
      fingerprint: file.fingerprint,
      source: file.source,
      savedAt: file.savedAt,
      ...(file.profile === undefined ? {} : { profile: file.profile }),
    });
  }
  return found;
}

/**
 * True when `record` holds a newer key than the rescue file's: the file's key is one the store
 * held before, or it was saved before the record's key. A rescue file is removed only after the
 * store took its key, so a kill in between leaves one behind, and once the principal rotates
 * again its key is dead: importing it would replace the live key with it.
 */
export function supersedes(
  record: DeepReadonly<PrincipalRecord> | undefined,
  file: { fingerprint: string; savedAt: string },
): boolean {
  if (record?.key === undefined || record.fingerprint === file.fingerprint) return false;
  if (heldFingerprintsOf(record).includes(file.fingerprint)) return true;
  return record.savedAt !== undefined && Date.parse(record.savedAt) > Date.parse(file.savedAt);
}

/**
 * What to run to bring a rescued key into the store, quoted for a POSIX shell. A
 * registration's names its profile (unless the default): imported from another profile, no
 * profile would point at the account, and that profile's next `status` would suggest
 * registering a second one. `store`: run it against that store, through `REKEY_STORE` (it wins
 * over REKEY_HOME, and a password is refused on argv): a file store's directory, or the
 * PostgreSQL URL as recorded (its password shown as `***`: the user puts it back).
 */
export function importAdvice(
  rescued: Pick<RescuedKey, "path" | "source" | "profile">,
  store?: RescueStore,
): string {
  const profile =
    rescued.source === "register" &&
    rescued.profile !== undefined &&
    rescued.profile !== DEFAULT_PROFILE
      ? ` --profile ${shellQuoted(rescued.profile)}`
      : "";
  const where =
    store === undefined
      ? ""
      : `REKEY_STORE=${shellQuoted(store.kind === "file" ? dirname(store.location) : store.location)} `;
  return `${where}rekey${profile} rescue import ${shellQuoted(rescued.path)}`;
}

/** `text` as one word for a POSIX shell: as it is when plain, else in single quotes. */
function shellQuoted(text: string): string {
  return /^[\w./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

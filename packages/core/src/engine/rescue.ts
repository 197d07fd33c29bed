import { randomBytes } from "node:crypto";
import { realpathSync } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { z } from "zod";
import { RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { PROFILE_NAME_PATTERN, rotationRecordSchema } from "../store/schema.js";
import type { CredentialStore } from "../store/types.js";

/**
 * Rescue files: where a key the faucet issued goes when the credential store will not take it
 * (read-only, full, gone). One file per key, 0600, in a 0700 directory of its own outside the
 * store, so that a store that is broken or later wiped does not take the key with it.
 * `rekey rescue import` (and the next resolution of the rotation) brings it back.
 *
 * Version 2 names the store the key was meant for (`store`: its kind and location): one rescue
 * directory serves every store of a user (two homes, a file store and PostgreSQL), and a store
 * lists and imports its own files and those of a principal it holds (see `ownRescueFile`).
 * Version 1 files (no `store`) are taken by any store of their faucet, as before.
 */

/** What identifies a store in a rescue file: its kind and its (redacted) location. */
export type RescueStore = Pick<CredentialStore, "kind" | "location">;

// Built on first use: only reading a rescue file needs it.
function buildRescueFileSchema() {
  // Only who recovered: the entry itself is made from the file's own fields
  // (`owedRecoveryEntry`), so a file cannot make rekey audit anything else.
  const pendingAudit = z.strictObject({
    profile: z.string().regex(PROFILE_NAME_PATTERN),
    surface: z.enum(["cli", "mcp", "http", "library"]),
  });
  return (
    z
      .strictObject({
        rescueVersion: z.union([z.literal(1), z.literal(2)]),
        /** The store the key was meant for (version 2; absent in version 1). */
        store: z.strictObject({ kind: z.string().min(1), location: z.string().min(1) }).optional(),
        /**
         * The audit entry its writer appends right after the file (another account's recovery):
         * while it is here, the entry may be missing, and whoever lists or imports the file writes
         * it once (see `rescue-audit.ts`). The writer drops it once the entry is appended.
         */
        pendingAudit: pendingAudit.optional(),
        faucet: z.string().min(1),
        /** The record principal ("operator:12", "agent:7"). */
        principal: z.string().min(1),
        key: z.string().min(1),
        fingerprint: z.string().min(1),
        source: z.enum(["register", "login", "create", "rotate", "recover", "import"]),
        savedAt: z.iso.datetime(),
        requestId: z.string().optional(),
        lastRotation: rotationRecordSchema.optional(),
        /** register: the account's recovery code, kept with its key. */
        recoveryCode: z.string().optional(),
        /** register (version 2): the profile that registered, which its import must name. */
        profile: z.string().min(1).optional(),
        operatorId: z.number().int().nonnegative().optional(),
      })
      // Version 2 always names its store: one without is not a file rekey wrote.
      .refine((file) => file.rescueVersion === 1 || file.store !== undefined)
      // Only another account's recovery owes an entry, and only in a version 2 file.
      .refine(
        (file) =>
          file.pendingAudit === undefined ||
          (file.rescueVersion === 2 && file.source === "recover" && file.requestId !== undefined),
      )
  );
}
let rescueFileSchema: ReturnType<typeof buildRescueFileSchema> | undefined;

export type RescueFile = z.infer<ReturnType<typeof buildRescueFileSchema>>;

/**
 * The rescue directory: REKEY_RESCUE_DIR, else `$XDG_STATE_HOME/rekey/rescue` (default
 * `~/.local/state/rekey/rescue`). Never inside the store directory.
 */
export function rescueDirOf(
  env: Record<string, string | undefined>,
  storeLocation: string,
): string {
  const home = env.HOME ?? homedir();
  const chosen =
    env.REKEY_RESCUE_DIR ??
    join(env.XDG_STATE_HOME ?? join(home, ".local", "state"), "rekey", "rescue");
  const dir = resolve(chosen);
  if (isAbsolute(storeLocation)) {
    const inside = relative(resolve(storeLocation), dir);
    if (inside === "" || (!inside.startsWith("..") && !isAbsolute(inside))) {
      return join(home, ".rekey-rescue");
    }
  }
  return dir;
}

/**
 * Writes a rescue file (0600, dir 0700, fsynced) for a key `store` refused, and returns its
 * path.
 */
export async function writeRescueFile(
  dir: string,
  store: RescueStore,
  content: Omit<RescueFile, "rescueVersion" | "fingerprint" | "store">,
): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stats = await lstat(dir);
  if (!stats.isDirectory()) throw new Error(`${dir} is not a directory`);
  if ((stats.mode & 0o077) !== 0) await chmod(dir, 0o700);
  const principal = content.principal.replace(/[^a-z0-9]+/gi, "-");
  const name = `${principal}-${content.requestId ?? content.source}-${randomBytes(3).toString("hex")}.json`;
  const path = join(dir, name);
  await writeDurably(path, {
    rescueVersion: 2,
    store: { kind: store.kind, location: store.location },
    ...content,
    fingerprint: fingerprint(content.key),
  });
  return path;
}

/**
 * Drops `pendingAudit` from the rescue file at `path` (its audit entry is written) and returns
 * the file as it now is. Atomic: the file holds the only copy of a key, so it is never torn.
 * @throws RekeyError INVALID_INPUT when it is not (or no longer) a rescue file.
 */
export async function dropPendingAudit(path: string): Promise<RescueFile> {
  const file = await readRescueFile(path);
  if (file.pendingAudit === undefined) return file;
  const { pendingAudit: _written, ...settled } = file;
  await writeDurably(path, settled);
  return settled;
}

/** Writes `body` to a 0600 temp file, fsyncs it, renames it over `path`, fsyncs the directory. */
async function writeDurably(path: string, body: RescueFile): Promise<void> {
  const temp = `${path}.${randomBytes(3).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(body, null, 2)}\n`, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  const dirHandle = await open(dirname(path), "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/**
 * True when `file` is `store`'s own: written for it (the same kind, at the same place once
 * symbolic links are followed), or by a rekey that did not name the store (version 1: any
 * store of its faucet's, as it always was). A store settles the audit entry its own files owe
 * and removes them once it holds their key. Another store that holds the file's principal (a
 * copy of the home, a store delivery target, the account whose key another profile's recovery
 * found) may list and import the key too, but leaves the file, and its owed entry, to the
 * store it names: that store's journal may still need it.
 */
export function ownRescueFile(file: RescueFile, store: RescueStore): boolean {
  if (file.store === undefined) return true;
  return (
    file.store.kind === store.kind &&
    canonicalLocation(file.store.kind, file.store.location) ===
      canonicalLocation(store.kind, store.location)
  );
}

/** A file store's location with its directory's symbolic links followed (when it exists). */
function canonicalLocation(kind: string, location: string): string {
  if (kind !== "file" || !isAbsolute(location)) return location;
  try {
    return join(realpathSync(dirname(location)), basename(location));
  } catch {
    return location;
  }
}

/** Reads and checks a rescue file. @throws RekeyError INVALID_INPUT when it is not one. */
export async function readRescueFile(path: string): Promise<RescueFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new RekeyError("INVALID_INPUT", `Cannot read the rescue file ${path}`, {
      cause: error,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  rescueFileSchema ??= buildRescueFileSchema();
  const parsed = rescueFileSchema.safeParse(raw);
  if (!parsed.success || fingerprint(parsed.data.key) !== parsed.data.fingerprint) {
    throw new RekeyError("INVALID_INPUT", `${path} is not a rekey rescue file`);
  }
  return parsed.data;
}

/**
 * The rescue file of one rotation of `principal` (a record principal) in `dir`, if one was
 * written. The request id ties the file to the journal that resolves it, whatever store path
 * or URL wrote it (a store reached through a link, or moved since, still finds its key). The
 * principal must match too: a recovery that found another account leaves that account's key
 * under the same request id, and it must never become this principal's key.
 */
export async function findRescueFile(
  dir: string,
  faucet: string,
  requestId: string,
  principal: string,
): Promise<{ path: string; file: RescueFile } | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter(
    (entry) => entry.endsWith(".json") && entry.includes(requestId),
  )) {
    const path = join(dir, name);
    const file = await readRescueFile(path).catch(() => undefined);
    if (file?.requestId === requestId && file.faucet === faucet && file.principal === principal)
      return { path, file };
  }
  return undefined;
}

/** Removes a rescue file once its key is in the store. */
export async function removeRescueFile(path: string): Promise<void> {
  await unlink(path).catch(() => {});
}

import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import { z } from "zod";
import { RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { rotationRecordSchema } from "../store/schema.js";

/**
 * Rescue files: where a key the faucet issued goes when the credential store will not take it
 * (read-only, full, gone). One file per key, 0600, in a 0700 directory of its own outside the
 * store, so that a store that is broken or later wiped does not take the key with it.
 * `rekey rescue import` (and the next resolution of the rotation) brings it back.
 */

// Built on first use: only reading a rescue file needs it.
function buildRescueFileSchema() {
  return z.strictObject({
    rescueVersion: z.literal(1),
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
    operatorId: z.number().int().nonnegative().optional(),
  });
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

/** Writes a rescue file (0600, dir 0700, fsynced) and returns its path. */
export async function writeRescueFile(
  dir: string,
  content: Omit<RescueFile, "rescueVersion" | "fingerprint">,
): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stats = await lstat(dir);
  if (!stats.isDirectory()) throw new Error(`${dir} is not a directory`);
  if ((stats.mode & 0o077) !== 0) await chmod(dir, 0o700);
  const principal = content.principal.replace(/[^a-z0-9]+/gi, "-");
  const name = `${principal}-${content.requestId ?? content.source}-${randomBytes(3).toString("hex")}.json`;
  const path = join(dir, name);
  const temp = `${path}.tmp`;
  const body: RescueFile = {
    rescueVersion: 1,
    ...content,
    fingerprint: fingerprint(content.key),
  };
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(body, null, 2)}\n`, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  const dirHandle = await open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return path;
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
 * written. The principal must match too: a recovery that found another account leaves that
 * account's key under the same request id, and it must never become this principal's key.
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

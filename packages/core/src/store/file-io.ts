import { randomBytes } from "node:crypto";
import type { BigIntStats, Stats } from "node:fs";
import { mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { RekeyError } from "../errors.js";

/** Filesystem steps of the file store, each turning failures into RekeyErrors. */

/** Mode of the store directory: owner only. */
export const DIR_MODE = 0o700;
/** Mode of every store file: owner read/write only. */
export const FILE_MODE = 0o600;

/** The errno code of a Node filesystem error, if it has one. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A STORE_UNAVAILABLE for a failed filesystem step; the message names the path and errno. */
export function storeUnavailable(action: string, path: string, error: unknown): RekeyError {
  const code = errnoCode(error) ?? "unknown error";
  return new RekeyError("STORE_UNAVAILABLE", `Cannot ${action} ${path} (${code})`, {
    cause: error,
    details: { path, errno: code },
    hint:
      code === "ENOSPC"
        ? "The disk is full; free space and retry."
        : code === "EACCES" || code === "EPERM" || code === "EROFS"
          ? "Make the store directory writable by this user, or choose another with REKEY_HOME."
          : undefined,
  });
}

/** Like ssh: a secret that group or others can read or write is refused, not used. */
export function modeProblem(
  path: string,
  stats: Pick<Stats, "mode"> | Pick<BigIntStats, "mode">,
  isDir: boolean,
): string | undefined {
  const mode = Number(stats.mode);
  if ((mode & 0o077) === 0) return undefined;
  const wanted = isDir ? "700" : "600";
  const actual = (mode & 0o777).toString(8);
  return `${path} has mode ${actual}, open to other users; run: chmod ${wanted} ${path}`;
}

/** @throws RekeyError STORE_UNAVAILABLE when the mode is open to group or others. */
export function assertPrivateMode(
  path: string,
  stats: Pick<Stats, "mode"> | Pick<BigIntStats, "mode">,
  isDir: boolean,
): void {
  const problem = modeProblem(path, stats, isDir);
  if (problem !== undefined) {
    throw new RekeyError("STORE_UNAVAILABLE", `Refusing to use ${problem}`, {
      hint: `chmod ${isDir ? "700" : "600"} ${path}`,
      details: { path },
    });
  }
}

/**
 * Creates `dir` (and missing parents) as 0700, or checks an existing one.
 *
 * @throws RekeyError STORE_UNAVAILABLE when it cannot be created, is not a directory, or is
 *   open to other users.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (error) {
    throw storeUnavailable("create the directory", dir, error);
  }
  let stats: Stats;
  try {
    stats = await stat(dir);
  } catch (error) {
    throw storeUnavailable("inspect the directory", dir, error);
  }
  if (!stats.isDirectory()) {
    throw new RekeyError("STORE_UNAVAILABLE", `${dir} is not a directory`, {
      details: { path: dir },
    });
  }
  assertPrivateMode(dir, stats, true);
}

/** fsync a directory so that a rename in it survives a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Temp files are `.<target>.<random>.tmp` beside the target, so a rename never crosses a filesystem. */
export function isTempFileFor(target: string, name: string): boolean {
  return name.startsWith(`.${basename(target)}.`) && name.endsWith(".tmp");
}

/**
 * Replaces `target` with `content` so that any reader sees the old or the new file, never a
 * mix: temp file (0600) in the same directory, write, fsync, rename over, fsync the directory.
 * `stillWanted`, called last thing before the rename, may call the write off: it then returns
 * false, having removed the temp file and left `target` as it was.
 *
 * @throws RekeyError STORE_UNAVAILABLE on any failure (ENOSPC, EACCES, EROFS...); the temp file
 *   is removed and `target` is left as it was.
 */
export async function writeFileAtomic(
  target: string,
  content: string,
  stillWanted: () => boolean = () => true,
): Promise<boolean> {
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "wx", FILE_MODE);
    try {
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (!stillWanted()) {
      await unlink(temp);
      return false;
    }
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw storeUnavailable("write", target, error);
  }
  try {
    await syncDir(dir);
  } catch (error) {
    throw storeUnavailable("sync the directory", dir, error);
  }
  return true;
}

/**
 * Proves a file can be created, synced and removed in `dir`.
 *
 * @throws RekeyError STORE_UNAVAILABLE when it cannot (read-only, full, not permitted...).
 */
export async function probeWritable(dir: string): Promise<void> {
  const probe = join(dir, `.rekey-writable.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(probe, "wx", FILE_MODE);
    try {
      await handle.writeFile("ok\n", "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await unlink(probe);
  } catch (error) {
    await unlink(probe).catch(() => {});
    throw storeUnavailable("write in", dir, error);
  }
}

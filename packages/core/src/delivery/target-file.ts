import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { lstat, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { RekeyError } from "../errors.js";
import { currentUid, errnoCode, syncDir } from "../store/file-io.js";

/** File checks and atomic rewrites shared by the file targets (lightning-wallet, dotenv). */

function refuse(path: string, why: string, hint: string): RekeyError {
  return new RekeyError("CONFIG_INVALID", `Refusing to deliver to ${path}: ${why}`, {
    hint,
    details: { path },
  });
}

/** A failed filesystem step on a target, naming the path and errno (never the content). */
export function targetIoError(action: string, path: string, error: unknown): RekeyError {
  if (error instanceof RekeyError) return error;
  const code = errnoCode(error) ?? "unknown error";
  return new RekeyError("STORE_UNAVAILABLE", `Cannot ${action} ${path} (${code})`, {
    cause: error,
    details: { path, errno: code },
    hint:
      code === "ENOSPC"
        ? "The disk is full; free space, then `rekey deliver retry`."
        : "Fix the file's permissions, then `rekey deliver retry`.",
  });
}

/**
 * `lstat` of a target file, refusing what rekey's own store refuses: a symbolic link (a write
 * would land wherever it points), a directory, another user's file, and a file open to other
 * users (`openMask`: the mode bits that must be clear). Undefined when the file does not exist.
 * @throws RekeyError CONFIG_INVALID for a refusal; STORE_UNAVAILABLE when it cannot be inspected.
 */
export async function inspectTargetFile(
  path: string,
  openMask: number,
): Promise<Stats | undefined> {
  let stats: Stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw targetIoError("inspect", path, error);
  }
  if (stats.isSymbolicLink()) {
    throw refuse(path, "it is a symbolic link", "Point the target at the real file.");
  }
  if (stats.isDirectory()) {
    throw refuse(path, "it is a directory", "Name the file itself, not its directory.");
  }
  if (!stats.isFile()) throw refuse(path, "it is not a regular file", "Name a regular file.");
  const uid = currentUid();
  if (uid !== undefined && stats.uid !== uid) {
    throw refuse(path, `it is owned by uid ${stats.uid}, not this user`, "Run as its owner.");
  }
  if ((stats.mode & openMask) !== 0) {
    const mode = (stats.mode & 0o777).toString(8);
    throw refuse(
      path,
      `it has mode ${mode}, open to other users`,
      `chmod ${(stats.mode & 0o777 & ~openMask).toString(8).padStart(3, "0")} ${path}`,
    );
  }
  return stats;
}

/** Reads a target file as UTF-8 (after {@link inspectTargetFile}). */
export async function readTargetFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw targetIoError("read", path, error);
  }
}

/**
 * Replaces `path` with `content` so that a reader sees the old or the new file: a temp file
 * with `mode` beside it, write, fsync, rename over, fsync the directory. On failure the temp
 * file is removed and `path` is left as it was.
 * @throws RekeyError STORE_UNAVAILABLE naming the path and errno (ENOSPC, EACCES...).
 */
export async function replaceTargetFile(path: string, content: string, mode: number) {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "wx", mode);
    try {
      // The umask may have narrowed `mode` at creation; the target keeps exactly its mode.
      await handle.chmod(mode);
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDir(dir);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw targetIoError("write", path, error);
  }
}

import { randomBytes } from "node:crypto";
import fs, { type BigIntStats, constants, lstatSync, type Stats } from "node:fs";
import { lstat, mkdir, open, statfs, unlink } from "node:fs/promises";
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
        : code === "EDQUOT"
          ? "The disk quota is used up; free space or raise the quota, and retry."
          : code === "EFBIG"
            ? "A file size limit was hit (ulimit -f); raise it and retry."
            : code === "EACCES" || code === "EPERM" || code === "EROFS"
              ? "Make the store directory writable by this user, or choose another with REKEY_HOME."
              : undefined,
  });
}

/** The user this process runs as; undefined where the platform has no uids (Windows). */
export function currentUid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

/** What {@link privacyProblem} looks at: `lstat`'s view, so a link is seen as a link. */
type PrivacyStats =
  | Pick<Stats, "mode" | "uid" | "isSymbolicLink" | "isDirectory">
  | Pick<BigIntStats, "mode" | "uid" | "isSymbolicLink" | "isDirectory">;

/**
 * Like ssh's StrictModes: a store path that is a symbolic link, belongs to another user, or
 * that group or others can read or write is refused, not used. A link could point rekey's
 * writes at any file; a store another user owns could have been laid out by them (a faucet
 * URL of their choosing, a key they know), and a write by root into a user's store would
 * leave files that user can no longer read.
 */
export function privacyProblem(
  path: string,
  stats: PrivacyStats,
  isDir: boolean,
): string | undefined {
  const uid = currentUid();
  if (stats.isSymbolicLink()) {
    return `${path} is a symbolic link; rekey does not follow links in its store (replace it with the real ${isDir ? "directory" : "file"})`;
  }
  const owner = Number(stats.uid);
  if (uid !== undefined && owner !== uid) {
    return `${path} is owned by uid ${owner}, not by this user (uid ${uid}); run rekey as the user who owns the store`;
  }
  const mode = Number(stats.mode);
  if ((mode & 0o077) === 0) return undefined;
  const wanted = isDir ? "700" : "600";
  const actual = (mode & 0o777).toString(8);
  return `${path} has mode ${actual}, open to other users; run: chmod ${wanted} ${path}`;
}

/**
 * @throws RekeyError STORE_UNAVAILABLE when the path is a link, another user's, or open to
 *   group or others (see {@link privacyProblem}).
 */
export function assertPrivate(path: string, stats: PrivacyStats, isDir: boolean): void {
  // A file where the store's directory should be: its mode is not the problem (REKEY_HOME
  // or --store names a file, say credentials.json itself).
  if (isDir && !stats.isDirectory() && !stats.isSymbolicLink()) {
    throw new RekeyError("STORE_UNAVAILABLE", `${path} is not a directory`, {
      hint: "Point REKEY_HOME (or --store) at the store's directory, not at a file.",
      details: { path },
    });
  }
  const problem = privacyProblem(path, stats, isDir);
  if (problem !== undefined) {
    throw new RekeyError("STORE_UNAVAILABLE", `Refusing to use the store: ${problem}`, {
      hint: stats.isSymbolicLink()
        ? "Point REKEY_HOME (or --store) at the real directory, and keep no links inside it."
        : Number(stats.uid) !== currentUid()
          ? "Run rekey as the store's owner (e.g. sudo -u OWNER rekey ...), or use a store of your own."
          : `chmod ${isDir ? "700" : "600"} ${path}`,
      details: { path },
    });
  }
}

/**
 * Checks an existing directory of the store with `lstat` (a link to a directory is refused).
 *
 * @throws RekeyError STORE_UNAVAILABLE when it cannot be inspected, is not a directory, is a
 *   link, another user's, or open to other users.
 */
export async function assertPrivateDir(dir: string): Promise<void> {
  let stats: Stats;
  try {
    stats = await lstat(dir);
  } catch (error) {
    throw storeUnavailable("inspect the directory", dir, error);
  }
  if (!stats.isDirectory() && !stats.isSymbolicLink()) {
    throw new RekeyError("STORE_UNAVAILABLE", `${dir} is not a directory`, {
      hint: "Point REKEY_HOME (or --store) at the store's directory, not at a file.",
      details: { path: dir },
    });
  }
  assertPrivate(dir, stats, true);
}

/**
 * Creates `dir` (and missing parents) as 0700, or checks an existing one.
 *
 * @throws RekeyError STORE_UNAVAILABLE when it cannot be created, is not a directory, is a
 *   symbolic link, belongs to another user, or is open to other users.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  // The directory exists on every call but a store's first: one synchronous lstat (a few
  // microseconds, no I/O for a cached inode) instead of mkdir and lstat through libuv's thread
  // pool, which a rotation paid on each of its writes, its audit append and its lock. Any
  // other answer (missing, not a directory, an error) takes the full path below.
  let stats: Stats | undefined;
  try {
    stats = lstatSync(dir, { throwIfNoEntry: false });
  } catch {
    stats = undefined;
  }
  if (stats?.isDirectory()) {
    assertPrivate(dir, stats, true);
    return;
  }
  try {
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (error) {
    // Something that is not a directory is already there: say what, as a read does.
    if (errnoCode(error) === "EEXIST") await assertPrivateDir(dir);
    throw storeUnavailable("create the directory", dir, error);
  }
  await assertPrivateDir(dir);
}

/**
 * Opens a file of the store without following a symbolic link (O_NOFOLLOW): a link planted
 * in the store directory would send reads or appends to a file of the planter's choosing.
 * `flags` as for `open(2)`; ELOOP (a link) becomes a clear refusal.
 *
 * @throws RekeyError STORE_UNAVAILABLE for a link; the filesystem's own error otherwise
 *   (ENOENT...), for the caller to judge.
 */
export async function openNoFollow(path: string, flags: number, mode = FILE_MODE) {
  try {
    return await open(path, flags | constants.O_NOFOLLOW, mode);
  } catch (error) {
    throw linkRefused(path, error);
  }
}

/** {@link openNoFollow} made synchronously: returns the descriptor. */
export function openNoFollowSync(path: string, flags: number, mode = FILE_MODE): number {
  try {
    return fs.openSync(path, flags | constants.O_NOFOLLOW, mode);
  } catch (error) {
    throw linkRefused(path, error);
  }
}

/** An open's error as {@link openNoFollow} reports it: ELOOP (a link) as a clear refusal. */
function linkRefused(path: string, error: unknown): unknown {
  if (errnoCode(error) !== "ELOOP") return error;
  return new RekeyError(
    "STORE_UNAVAILABLE",
    `Refusing to use ${path}: it is a symbolic link; rekey does not follow links in its store`,
    {
      hint: "Replace the link with the real file (or remove it), then retry.",
      details: { path },
    },
  );
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
 * fsync of an open descriptor, through libuv's thread pool (it waits on the disk). Called as
 * `fs.fsync` on the module object, so that what counts this process's fsyncs (the
 * store-operations test, the rotation bench) sees every one.
 */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fsync(fd, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Replaces `target` with `content` so that any reader sees the old or the new file, never a
 * mix: temp file (0600) in the same directory, write, fsync, rename over, fsync the directory.
 * `stillWanted`, called last thing before the rename, may call the write off: it then returns
 * false, having removed the temp file and left `target` as it was.
 *
 * `durable: false` skips the directory's fsync, and only that: the rename may then be undone
 * by a power cut (the directory names the previous file again, whole, as its own write left
 * it), but never torn. The temp file's fsync stays: without it a filesystem that does not
 * order a rename after the renamed file's data (XFS, ext4 mounted noauto_da_alloc) can keep
 * the rename and lose the data, leaving an empty or partial file in place of the store.
 *
 * Only the fsyncs and the rename go through libuv's thread pool. The open, write (into the
 * page cache) and close are synchronous: microseconds each for a store file, where each hop
 * through the pool cost a thread wake-up and a hand-back to the event loop (tens to hundreds
 * of microseconds on a busy 2-core machine; a rotation made about twenty of them in its three
 * writes). The rename stays in the pool: it changes the directory, and on ext4 waits for the
 * journal while other fsyncs commit it (0.7 ms a rename measured on the event loop under disk
 * contention, where a `whoami` reply waited behind it); made synchronously, rotations were
 * 3-6% slower than with it in the pool.
 *
 * `beforeRename`, when given, runs once the temp file holds `content` (in the page cache), while
 * its fsync runs, and must resolve before the rename: a write that has to follow something
 * durable elsewhere (the file store's audit entry, see `FileStore.compareAndSet`) makes it
 * without a second wait on the disk. If it fails, the rename is not made and its error is
 * thrown as is when it is a RekeyError.
 *
 * @throws RekeyError STORE_UNAVAILABLE on any failure (ENOSPC, EACCES, EROFS...); the temp file
 *   is removed and `target` is left as it was.
 */
export async function writeFileAtomic(
  target: string,
  content: string | Uint8Array,
  stillWanted: () => boolean = () => true,
  {
    durable = true,
    beforeRename,
  }: { durable?: boolean; beforeRename?: (() => Promise<void>) | undefined } = {},
): Promise<boolean> {
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = fs.openSync(temp, "wx", FILE_MODE);
    try {
      writeAll(fd, content);
      // Both settle before the descriptor is closed: an fsync still in the thread pool must
      // not outlive its descriptor (the number may be reused by the next open). Hence
      // `beforeRename` is called inside an async function, where a synchronous throw is a
      // rejection too.
      const [synced, before] = await Promise.allSettled([
        fsyncFd(fd),
        (async () => beforeRename?.())(),
      ]);
      if (before.status === "rejected") throw before.reason;
      if (synced.status === "rejected") throw synced.reason;
    } finally {
      fs.closeSync(fd);
    }
    if (!stillWanted()) {
      fs.unlinkSync(temp);
      return false;
    }
    await fs.promises.rename(temp, target);
  } catch (error) {
    try {
      fs.unlinkSync(temp);
    } catch {
      // Never created, or already renamed: nothing to remove.
    }
    if (error instanceof RekeyError) throw error;
    throw storeUnavailable("write", target, error);
  }
  if (!durable) return true;
  try {
    await syncDirFd(dir);
  } catch (error) {
    throw storeUnavailable("sync the directory", dir, error);
  }
  return true;
}

/** Writes all of `content` at the descriptor's position (a write may take less than asked). */
export function writeAll(fd: number, content: string | Uint8Array): void {
  const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
  let offset = 0;
  while (offset < bytes.byteLength) {
    offset += fs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
  }
}

/** {@link syncDir} with the open and close made synchronously: one hop, the fsync. */
async function syncDirFd(dir: string): Promise<void> {
  const fd = fs.openSync(dir, constants.O_RDONLY);
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
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

// Beyond the new copy of the file: the audit entry a rotation appends, with room to spare.
const WRITE_HEADROOM_BYTES = 64 * 1024;

/**
 * A problem when the disk holding `dir` has too little room for the next write of `file` (in
 * `dir`): a write puts a whole new copy beside the old one until its rename, and a rotation also
 * appends to the audit log. A rotation on a full disk fails before the faucet is called, so
 * nothing is lost, but a check should say so before a rotation finds out. Counts only the space
 * an unprivileged user may use. Undefined when there is room, or when the platform cannot tell
 * (quotas do not show here).
 */
export async function lowSpaceProblem(dir: string, file: string): Promise<string | undefined> {
  let free: number;
  let fileSize: number;
  try {
    const disk = await statfs(dir);
    free = disk.bavail * disk.bsize;
    fileSize = (await lstat(file).catch(() => undefined))?.size ?? 0;
  } catch {
    return undefined;
  }
  const needed = 2 * fileSize + WRITE_HEADROOM_BYTES;
  if (free >= needed) return undefined;
  return `the disk holding ${dir} has ${kibibytes(free)} free; the next write of ${basename(file)} needs about ${kibibytes(needed)} (free space before rotating)`;
}

function kibibytes(bytes: number): string {
  return `${Math.floor(bytes / 1024)} KiB`;
}

/**
 * Removes temp files in `dir` (those `isTemp` accepts) last modified more than `graceMs` ago:
 * the leftovers of a write killed between its write and its rename, each holding a live key
 * in a 0600 file that nothing would ever read or remove. Younger ones may be another process's
 * write in flight and are kept. Call it under the store's write lock. Links and entries of
 * other users are left alone (they are not ours to delete). Returns the paths removed.
 * Throws nothing: a leftover that cannot be removed now is tried again on the next write.
 *
 * Synchronous: a store directory holds a handful of entries, and a listing of it costs
 * microseconds, less than the two hops through the thread pool (listing, then a stat of the
 * write's own temp file) it took on every write. Call it before the write's own temp file is
 * made: then it stats only what some other write left.
 */
export function removeOrphanTempFiles(
  dir: string,
  isTemp: (name: string) => boolean,
  nowMs: number,
  graceMs: number,
): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!isTemp(name)) continue;
    const path = join(dir, name);
    try {
      const stats = fs.lstatSync(path);
      if (!stats.isFile() || stats.uid !== (currentUid() ?? stats.uid)) continue;
      if (nowMs - stats.mtimeMs <= graceMs) continue;
      fs.unlinkSync(path);
      removed.push(path);
    } catch {
      // Gone already (another process swept it), or not ours: nothing to do.
    }
  }
  return removed;
}

// Runs the CLI bundle (dist/cli.cjs) with a V8 code cache. Compiling the ~1.5 MB bundle, and
// then each function the command runs, was most of a cold `rekey status` (bench/README.md,
// "Cold start"). V8 can serialise what it compiled (`vm.Script#createCachedData`, taken after the
// command ran, so the functions it used are in it) and take it back on the next start. Node 22's
// `module.enableCompileCache()` does the same for files node loads itself, but node 20 has none,
// so the launcher compiles the one file through `vm.Script` on every version.
//
// The cache is a speed-up only: anything wrong with it (missing, corrupt, from another build or
// node, not ours, a directory we cannot write) means compiling from source as without it, never
// a failed command. It holds compiled public code, no secret; it is private (0700 directory,
// 0600 files, owned by this user) because V8 runs what it holds: a file someone else could write
// would be code they could run as us. Each file starts with the SHA-256 of the V8 data after it:
// V8 checks the data's version, flags and source length, but a release build does not checksum
// it, and damaged data aborts the process in its deserializer (seen on node 20).

import { createHash } from "node:crypto";
import {
  closeSync,
  constants as fs,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join } from "node:path";
import { Script } from "node:vm";

/** Where one build's cache lives and what it is called. */
export interface CodeCacheLocation {
  /** The per-user directory (created 0700 if missing). */
  directory: string;
  /** The file in it: one per bundle hash, node version and architecture. */
  file: string;
}

const CACHE_PREFIX = "cli-";
const CACHE_SUFFIX = ".v8cache";
const DIGEST_BYTES = 32;

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

/**
 * The cache of this bundle (`bundleHash`, computed at build time) for the running node:
 * `$XDG_CACHE_HOME/rekey` when that is an absolute path, else `~/.cache/rekey`. `undefined` when
 * the cache is off: `NODE_DISABLE_COMPILE_CACHE` set (node's own switch for its compile cache),
 * or no home directory to put it in.
 */
export function codeCacheLocation(
  env: Record<string, string | undefined>,
  homeDir: string,
  bundleHash: string,
): CodeCacheLocation | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE !== undefined && env.NODE_DISABLE_COMPILE_CACHE !== "") {
    return undefined;
  }
  const xdg = env.XDG_CACHE_HOME;
  const base =
    xdg !== undefined && isAbsolute(xdg)
      ? xdg
      : homeDir === ""
        ? undefined
        : join(homeDir, ".cache");
  if (base === undefined) return undefined;
  const directory = join(base, "rekey");
  // V8 also refuses data from another V8 or flag set; the name keeps one file per combination
  // so that two node versions used in turn do not overwrite each other's cache on every run.
  const key = `${bundleHash}-${process.version}-${process.arch}`.replace(/[^\w.-]/g, "_");
  return { directory, file: join(directory, `${CACHE_PREFIX}${key}${CACHE_SUFFIX}`) };
}

/** True when `stats` belongs to this user and no one else may read or write it. */
function isPrivate(stats: { uid: number; mode: number }): boolean {
  // No uid or permission bits to check on Windows: the user's profile directory is private.
  if (typeof process.getuid !== "function") return true;
  return stats.uid === process.getuid() && (stats.mode & 0o077) === 0;
}

/** The directory, created 0700 if missing; `false` when it is not ours alone or cannot be made. */
function privateDirectory(directory: string): boolean {
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    const stats = statSync(directory);
    return stats.isDirectory() && isPrivate(stats);
  } catch {
    return false;
  }
}

/**
 * The V8 data in `file` if it is a private regular file of ours whose digest matches, else
 * `undefined`.
 */
function readCacheFile(file: string): Buffer | undefined {
  let descriptor: number | undefined;
  try {
    descriptor = openSync(file, fs.O_RDONLY | (fs.O_NOFOLLOW ?? 0));
    const stats = fstatSync(descriptor);
    if (!stats.isFile() || !isPrivate(stats)) return undefined;
    const contents = readFileSync(descriptor);
    const data = contents.subarray(DIGEST_BYTES);
    if (
      contents.length <= DIGEST_BYTES ||
      !sha256(data).equals(contents.subarray(0, DIGEST_BYTES))
    ) {
      return undefined;
    }
    return data;
  } catch {
    return undefined;
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

/**
 * Writes `data` behind its digest as `file` (0600, atomically), and removes the caches of other
 * builds.
 */
function writeCacheFile(location: CodeCacheLocation, data: Buffer): void {
  const temporary = `${location.file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, Buffer.concat([sha256(data), data]), { mode: 0o600, flag: "wx" });
    renameSync(temporary, location.file);
    // Older builds' caches, and temp files a process killed mid-write left behind.
    for (const name of readdirSync(location.directory)) {
      const path = join(location.directory, name);
      const ours = name.startsWith(CACHE_PREFIX) && /\.v8cache(\.\d+\.tmp)?$/.test(name);
      if (ours && path !== location.file) rmSync(path, { force: true });
    }
  } catch {
    rmSync(temporary, { force: true });
  }
}

/**
 * Runs the CommonJS file `bundlePath` as node would `require` it, compiled from the code cache at
 * `location` when it holds one V8 accepts. When it holds none (first run, a new build or node,
 * corrupt or foreign data), the cache is written as the process exits, so it also holds the
 * functions this run compiled. With `location` undefined it only compiles and runs. Throws only
 * what the bundle throws.
 */
export function runWithCodeCache(
  bundlePath: string,
  location: CodeCacheLocation | undefined,
): void {
  const source = readFileSync(bundlePath, "utf8");
  const writable = location !== undefined && privateDirectory(location.directory);
  const cachedData = writable ? readCacheFile(location.file) : undefined;
  // The function node wraps a CommonJS file in; on the first line, so line numbers stay.
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;
  const script = new Script(wrapped, { filename: bundlePath, cachedData });
  if (writable && (cachedData === undefined || script.cachedDataRejected === true)) {
    process.once("exit", () => {
      try {
        writeCacheFile(location, script.createCachedData());
      } catch {
        // A cache we could not build is one we do without.
      }
    });
  }
  const module = { exports: {} };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run.call(
    module.exports,
    module.exports,
    createRequire(bundlePath),
    module,
    bundlePath,
    dirname(bundlePath),
  );
}

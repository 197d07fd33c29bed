import * as fs from "node:fs";
import type { lock } from "proper-lockfile";

/**
 * Cross-process mutual exclusion on top of proper-lockfile: a lock is a directory created with
 * mkdir (atomic on every local filesystem), whose mtime the holder refreshes while it lives.
 * A holder that dies stops refreshing, and after `staleMs` the next taker removes its lock.
 */

/** proper-lockfile refuses staleness under 2 s; asking for less would silently get 2 s. */
export const MIN_STALE_MS = 2000;

export interface HeldFileLock {
  /** Set once proper-lockfile reports the lock was taken over (we stalled past `staleMs`). */
  readonly compromised: boolean;
  /** Ends the lock; safe to call twice, and after a compromise. Throws nothing. */
  release(): Promise<void>;
}

/** Options of {@link acquireFileLock}. */
export interface AcquireFileLockOptions {
  /** The directory proper-lockfile creates as the lock. Its parent must exist. */
  lockPath: string;
  staleMs: number;
  waitMs: number;
}

/** Thrown by {@link acquireFileLock} when `waitMs` passed with the lock held elsewhere. */
export class FileLockTimeout extends Error {
  override readonly name = "FileLockTimeout";
}

/**
 * A callback-style call made synchronously, its callback called on the next tick (never
 * before the caller returns, as an asynchronous call would).
 */
function deferredCallback<A extends unknown[], R>(call: (...args: A) => R) {
  return (...args: [...A, (error: Error | null, result?: R) => void]) => {
    const callback = args.pop() as (error: Error | null, result?: R) => void;
    let result: R | undefined;
    let failure: Error | null = null;
    try {
      result = call(...(args as unknown as A));
    } catch (error) {
      failure = error as Error;
    }
    process.nextTick(callback, failure, result);
  };
}

/**
 * The filesystem proper-lockfile is given: its mkdir, stat and utimes of one local directory
 * take microseconds made synchronously, where each hop through libuv's thread pool
 * (graceful-fs, its default) costs tens of them on a busy event loop; a rotation takes five
 * locks, three calls each. One object for the process: proper-lockfile caches the filesystem's
 * mtime precision on it.
 */
const syncFs = {
  ...fs,
  mkdir: deferredCallback(fs.mkdirSync),
  // Not rmdir: removing a directory waits for the ext4 journal while other processes' fsyncs
  // commit it (0.66 ms a call on the event loop under disk contention, five per rotation, the
  // reply of a `whoami` in flight waiting behind it); in the pool, rotations were 4-10% faster.
  rmdir: fs.rmdir,
  stat: deferredCallback(fs.statSync),
  utimes: deferredCallback(fs.utimesSync),
  realpath: deferredCallback(fs.realpathSync),
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// Loaded on the first lock: with graceful-fs, signal-exit and node's assert under it, ~3 ms that
// a command which only reads the store (`rekey status`) never needs.
let lockFileModule: Promise<typeof lock> | undefined;
function loadLockFile(): Promise<typeof lock> {
  // Through `default` (module.exports, a CommonJS package): esbuild's ES module chunks of it
  // export nothing else, where node's own import also finds `lock` by name.
  lockFileModule ??= import("proper-lockfile").then((module) => module.default.lock);
  return lockFileModule;
}

/**
 * Takes the lock at `lockPath`, retrying while another holder has it, for up to `waitMs`.
 *
 * @throws FileLockTimeout when the wait elapses; the filesystem's error (EACCES, ENOENT...)
 *   when the lock cannot be created at all. Callers turn both into RekeyErrors.
 */
export async function acquireFileLock(options: AcquireFileLockOptions): Promise<HeldFileLock> {
  const deadline = Date.now() + options.waitMs;
  const state = { compromised: false, released: false };
  let pauseMs = 5;
  const lockFile = await loadLockFile();
  for (;;) {
    try {
      const release = await lockFile(options.lockPath, {
        // The lock directory itself is the lock; there is no file to resolve.
        realpath: false,
        fs: syncFs,
        lockfilePath: options.lockPath,
        stale: Math.max(options.staleMs, MIN_STALE_MS),
        retries: 0,
        // The default throws from a timer, which would crash the process.
        onCompromised: () => {
          state.compromised = true;
        },
      });
      return {
        get compromised() {
          return state.compromised;
        },
        release: async () => {
          if (state.released) return;
          state.released = true;
          try {
            await release();
          } catch {
            // Already released by proper-lockfile after a compromise: nothing left to undo.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new FileLockTimeout(`${options.lockPath} is held`);
      // Jitter keeps contending processes from retrying in lockstep.
      await sleep(Math.min(remaining, pauseMs + Math.random() * pauseMs));
      pauseMs = Math.min(pauseMs * 2, 100);
    }
  }
}

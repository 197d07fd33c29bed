import {
  type FSWatcher,
  type StatsListener,
  statSync,
  unwatchFile,
  watch,
  watchFile,
} from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";

/**
 * Notices changes to one file, made by this process or any other.
 *
 * `fs.watch` on the directory is fast (inotify), and catches atomic replaces, which arrive as
 * rename events; it can miss events on network filesystems and fails if the directory does not
 * exist yet, so a slow `fs.watchFile` poll backs it up. Both only schedule a check: the file's
 * identity (inode, size, change times) decides whether listeners are called, so one write
 * produces one notification however many events report it.
 */

/** Timing of {@link createFileWatcher}. */
export interface FileWatcherOptions {
  debounceMs: number;
  pollIntervalMs: number;
}

/** A watch on one file shared by any number of listeners. */
export interface FileWatcher {
  add(listener: () => void): () => void;
  /** Stops the watchers and timers and drops every listener. */
  close(): void;
  /** Notifies after a write by this process, even if the file looks unchanged. */
  poke(): void;
}

interface FileIdentity {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const signature = (stats: FileIdentity | undefined) =>
  stats === undefined ? "absent" : `${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;

async function signatureOf(path: string): Promise<string> {
  try {
    return signature(await stat(path, { bigint: true }));
  } catch {
    return "absent";
  }
}

function signatureOfSync(path: string): string {
  try {
    return signature(statSync(path, { bigint: true, throwIfNoEntry: false }));
  } catch {
    return "absent";
  }
}

/** Watches `path`; watchers run only while at least one listener is subscribed. Throws nothing. */
export function createFileWatcher(path: string, options: FileWatcherOptions): FileWatcher {
  const listeners = new Set<() => void>();
  let dirWatcher: FSWatcher | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  let lastSignature = "absent";
  // Set by poke(): this process wrote, so notify even if the baseline already saw the write.
  let ownWrite = false;
  let checking = Promise.resolve();
  const fileName = basename(path);

  const check = async () => {
    const current = await signatureOf(path);
    const changed = current !== lastSignature || ownWrite;
    lastSignature = current;
    ownWrite = false;
    if (!changed) return;
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; it must not stop the others.
      }
    }
  };

  const schedule = () => {
    if (listeners.size === 0) return;
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      // Checks run one after another so that two never compare against the same signature.
      checking = checking.then(check);
    }, options.debounceMs);
    debounceTimer.unref();
  };

  const onPoll: StatsListener = () => schedule();

  const start = () => {
    // Synchronous, so that a write made right after watch() returns is never taken as the baseline.
    lastSignature = signatureOfSync(path);
    try {
      dirWatcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === fileName) schedule();
      });
      dirWatcher.on("error", () => {
        dirWatcher?.close();
        dirWatcher = undefined;
      });
    } catch {
      // No directory yet (or no inotify): the poll below still notices the file appearing.
      dirWatcher = undefined;
    }
    watchFile(path, { persistent: false, interval: options.pollIntervalMs }, onPoll);
  };

  const stop = () => {
    dirWatcher?.close();
    dirWatcher = undefined;
    unwatchFile(path, onPoll);
    clearTimeout(debounceTimer);
    debounceTimer = undefined;
  };

  return {
    add(listener) {
      const wasIdle = listeners.size === 0;
      listeners.add(listener);
      if (wasIdle) start();
      return () => {
        if (!listeners.delete(listener)) return;
        if (listeners.size === 0) stop();
      };
    },
    close() {
      listeners.clear();
      stop();
    },
    poke() {
      if (listeners.size === 0) return;
      ownWrite = true;
      schedule();
    },
  };
}

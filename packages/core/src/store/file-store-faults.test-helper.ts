import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { AUDIT_FILE, CREDENTIALS_FILE } from "./file-store.js";

/**
 * Once the store's audit log grows (a write's entry appended, its fsync and the new file's still
 * running), moves `credentials.json`'s change time (a chmod to the same mode), as when a process
 * that took the stale write lock replaces the file: the write's last check before its rename
 * then fails. Checked on every turn of the event loop, so it lands before the fsyncs return.
 * `changed()` says how many times it did (once at most); `stop()` stops looking.
 */
export function changeCredentialsWhenLogGrows(dir: string): {
  changed(): number;
  stop(): void;
} {
  const audit = join(dir, AUDIT_FILE);
  const size = statSync(audit).size;
  let changed = 0;
  let watching = true;
  const tick = () => {
    if (!watching) return;
    if (statSync(audit).size > size) {
      chmodSync(join(dir, CREDENTIALS_FILE), 0o600);
      changed++;
      return;
    }
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    changed: () => changed,
    stop: () => {
      watching = false;
    },
  };
}

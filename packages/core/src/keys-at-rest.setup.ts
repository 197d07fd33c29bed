import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect } from "vitest";
import { FileStore } from "./store/file-store.js";

/**
 * Runs around every core test: after each write through a file store, and when it closes,
 * no file of the store directory (credentials, audit log, backups) may hold a raw faucet key
 * or recovery code. Whatever a test does, its keys are at rest only sealed.
 */
const RAW_KEY = /\blfr?_[A-Za-z0-9_-]{43}\b/;
const found: string[] = [];
const STORE_FILE = /^(credentials[^/]*\.json|audit\.jsonl|\.credentials\.json\.[0-9a-f]+\.tmp)$/;

function scan(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    // The store's own files (what rekey keeps at rest), not delivery targets a test put there:
    // those hold the key by design.
    if (!STORE_FILE.test(name)) continue;
    let text: string;
    try {
      // Regular files only: a test's store dir may be /proc/<pid>/fd, whose pipes never end.
      if (!lstatSync(join(dir, name)).isFile()) continue;
      text = readFileSync(join(dir, name), "utf8");
    } catch {
      continue;
    }
    if (RAW_KEY.test(text)) found.push(join(dir, name));
  }
}

for (const method of ["compareAndSet", "appendAudit", "close"] as const) {
  const original = FileStore.prototype[method] as (...args: unknown[]) => Promise<unknown>;
  Object.defineProperty(FileStore.prototype, method, {
    configurable: true,
    writable: true,
    value: async function (this: FileStore, ...args: unknown[]) {
      try {
        return await original.apply(this, args);
      } finally {
        scan(this.dir);
      }
    },
  });
}

afterEach(() => {
  const files = found.splice(0);
  expect(files, "a raw key was found at rest in a store file").toEqual([]);
});

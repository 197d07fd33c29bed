import { afterEach, expect } from "vitest";
import { FileStore } from "./store/file-store.js";
import { installSealedKeyEquality } from "./store/sealed-key-equality.js";
import { storeFilesHoldingRawKeys } from "./testing/keys-at-rest.js";

/**
 * Runs around every core test: after each write through a file store, and when it closes,
 * no file of the store directory (credentials, audit log, backups) may hold a raw faucet key
 * or recovery code. Whatever a test does, its keys are at rest only sealed. (The other suites
 * scan the directories their tests remove: `installKeysAtRestScan` in `testing/`.)
 */
const found: string[] = [];
// Reads leave keys sealed (`SealedKey`): tests compare them by what they open to.
installSealedKeyEquality();
function scan(dir: string): void {
  found.push(...storeFilesHoldingRawKeys(dir));
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

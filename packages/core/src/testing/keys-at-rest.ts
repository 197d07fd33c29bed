import fs, { lstatSync, readdirSync, readFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { afterAll, afterEach, expect } from "vitest";

/**
 * The scan behind "no raw key at rest, across the whole suite" (issue "Keys encrypted at
 * rest"): whatever a test does, through the library, a CLI child process or a server, a store
 * it leaves on disk holds keys only sealed. Core's suite scans after each write
 * (`keys-at-rest.setup.ts`); the other suites scan each temp directory a test removes, just
 * before it goes (so what child processes wrote is seen too), with {@link installKeysAtRestScan}.
 */

/**
 * A key or recovery code the sandbox issues: `lf_`/`lfr_` then 43 base64url characters, standing
 * alone. Bounded by non-base64url characters (not `\b`): a sealed key's base64url ciphertext
 * holds `lf_` and 43 more such characters by chance, about once in a few hundred stores.
 */
export const RAW_KEY = /(?<![A-Za-z0-9_-])lfr?_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/;

/**
 * rekey's own files in a store directory: credentials (and the backups a migration keeps,
 * `credentials*.json`), the audit log, a write's temp file. Not delivery targets a test put
 * there (an .env holds the key by design).
 */
export const STORE_FILE =
  /^(credentials[^/]*\.json|audit\.jsonl|\.credentials\.json\.[0-9a-f]+\.tmp)$/;

/**
 * Whether a file named like a store file is rekey's: a lightning-wallet client's own
 * `credentials.json` (a delivery target, holding the key by design) is not. A `credentials*.json`
 * is rekey's when it is a store document or a sealed backup (or not JSON at all: a torn write).
 */
function isRekeyFile(name: string, text: string): boolean {
  if (!name.startsWith("credentials")) return true;
  try {
    const parsed = JSON.parse(text) as unknown;
    return (
      typeof parsed !== "object" ||
      parsed === null ||
      "data" in parsed ||
      "rekeySealedBackup" in parsed
    );
  } catch {
    return true;
  }
}

/**
 * The store files under `root` (it and, with `deep`, every directory below it) holding a raw
 * key. Regular files only (a test's store dir may be /proc/<pid>/fd, whose pipes never end);
 * what cannot be read is skipped. Throws nothing.
 */
export function storeFilesHoldingRawKeys(root: string, deep = false): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      let stats: fs.Stats;
      try {
        stats = lstatSync(path);
      } catch {
        continue;
      }
      if (stats.isDirectory()) {
        if (deep && depth < 8) visit(path, depth + 1);
        continue;
      }
      if (!stats.isFile() || !STORE_FILE.test(name)) continue;
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        continue; // Gone meanwhile, or unreadable: nothing to scan.
      }
      if (RAW_KEY.test(text) && isRekeyFile(name, text)) found.push(path);
    }
  };
  visit(root, 0);
  return found;
}

/**
 * Kept on the process, not the module: vitest re-evaluates modules for each test file in a
 * worker that lives on, while `fs` (patched once) is the process's.
 */
const SHARED = Symbol.for("rekey.test.keysAtRest");
const processGlobals = globalThis as Record<symbol, unknown>;
if (processGlobals[SHARED] === undefined) processGlobals[SHARED] = { findings: [], patched: false };
const shared = processGlobals[SHARED] as { findings: string[]; patched: boolean };

/** Records a place where a raw key was found at rest; the scan's hooks fail the test on it. */
export function reportRawKeyAtRest(where: string): void {
  shared.findings.push(where);
}

/** What the scan found since it was last asked, emptied. Throws nothing. */
export function takeRawKeysAtRest(): string[] {
  return shared.findings.splice(0);
}

/**
 * Scans every directory tree a test removes (`fs.rm`, `fs.promises.rm`, `fs.rmSync`, the
 * way every suite cleans its temp dirs) for store files holding a raw key, just before it goes,
 * and fails the test (or the file, for an `afterAll` removal) that left one. Call from a vitest
 * setup file (or a test file's top level). The removal itself is Node's, unchanged.
 */
export function installKeysAtRestScan(): void {
  const check = () => {
    expect(takeRawKeysAtRest(), "a raw key was found at rest in a store file").toEqual([]);
  };
  afterEach(check);
  afterAll(check);
  if (shared.patched) return;
  shared.patched = true;
  const scanBefore = (path: unknown) => {
    if (typeof path === "string" || path instanceof URL) {
      for (const file of storeFilesHoldingRawKeys(
        path instanceof URL ? path.pathname : path,
        true,
      )) {
        reportRawKeyAtRest(file);
      }
    }
  };
  const promisesRm = fs.promises.rm;
  fs.promises.rm = (path, options) => {
    scanBefore(path);
    return promisesRm(path, options);
  };
  const rmSync = fs.rmSync;
  fs.rmSync = (path, options) => {
    scanBefore(path);
    rmSync(path, options);
  };
  const rm = fs.rm;
  fs.rm = ((path: fs.PathLike, ...rest: unknown[]) => {
    scanBefore(path);
    return (rm as (...args: unknown[]) => void)(path, ...rest);
  }) as typeof fs.rm;
  // `import { rm } from "node:fs/promises"` binds to the builtin's exports: make them these.
  syncBuiltinESMExports();
}

import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Script } from "node:vm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installBuiltCli, runBinary } from "./cli-harness.test-helper.js";
import { codeCacheLocation } from "./code-cache.js";

// The built command (dist/, rebuilt by scripts/vitest-build-first.mjs) installed in a temp
// directory and run as a child process, with its code cache in a temp XDG_CACHE_HOME.
describe("the CLI's V8 code cache", () => {
  let dir: string;
  let bin: string;
  let cacheHome: string;
  let expectedHelp: string;
  const cacheDir = () => join(cacheHome, "rekey");
  const help = async (env: Record<string, string> = {}) => {
    const result = await runBinary(["--help"], {
      bin,
      env: { HOME: dir, XDG_CACHE_HOME: cacheHome, ...env },
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(expectedHelp);
    return result;
  };
  const cacheFiles = async () =>
    (await readdir(cacheDir())).filter((name) => !name.endsWith(".tmp"));
  const onlyCacheFile = async () => {
    const files = await cacheFiles();
    expect(files).toHaveLength(1);
    return join(cacheDir(), files[0] ?? "");
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rekey-code-cache-test-"));
    bin = await installBuiltCli(dir);
    const uncached = await runBinary(["--help"], {
      bin,
      env: { HOME: dir, NODE_DISABLE_COMPILE_CACHE: "1" },
    });
    expectedHelp = uncached.stdout;
    expect(expectedHelp).toContain("Examples:");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    cacheHome = await mkdtemp(join(dir, "cache-"));
  });

  it("is written on the first run (0700 directory, 0600 file) and taken, not rewritten, after", async () => {
    await help();
    expect((await stat(cacheDir())).mode & 0o777).toBe(0o700);
    const file = await onlyCacheFile();
    expect(file).toMatch(
      new RegExp(`cli-[0-9a-f]{16}-${process.version}-${process.arch}\\.v8cache$`),
    );
    const written = await stat(file);
    expect(written.mode & 0o777).toBe(0o600);
    expect(written.size).toBeGreaterThan(100_000);

    await help();
    const after = await stat(file);
    // V8 accepted it: nothing was written again.
    expect(after.ino).toBe(written.ino);
    expect(after.mtimeMs).toBe(written.mtimeMs);
  });

  it("ignores a corrupt cache file and replaces it", async () => {
    await help();
    const file = await onlyCacheFile();
    const good = await readFile(file);
    const corrupt = Buffer.from(good);
    corrupt.fill(0x5a, 64, 4096);
    await writeFile(file, corrupt);
    await help();
    expect((await readFile(file)).equals(corrupt)).toBe(false);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    await writeFile(file, "not a code cache");
    await help();
    expect((await stat(file)).size).toBeGreaterThan(100_000);
  });

  it("ignores V8 data of another script behind a correct digest (V8 refuses it) and replaces it", async () => {
    await help();
    const file = await onlyCacheFile();
    const foreign = new Script("globalThis.answer = 42;").createCachedData();
    const planted = Buffer.concat([createHash("sha256").update(foreign).digest(), foreign]);
    await writeFile(file, planted);
    await help();
    expect((await stat(file)).size).toBeGreaterThan(100_000);
  });

  it("ignores a cache file others may write, and a directory others may enter", async () => {
    await help();
    const file = await onlyCacheFile();
    await writeFile(file, "planted by someone else");
    await chmod(file, 0o666);
    await help();
    // Not read (it would have been rejected as corrupt anyway): replaced by a private one.
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(file)).size).toBeGreaterThan(100_000);

    await rm(cacheDir(), { recursive: true });
    await mkdir(cacheDir(), { mode: 0o755 });
    await chmod(cacheDir(), 0o755);
    await help();
    expect(await readdir(cacheDir())).toEqual([]);
  });

  it("removes the caches of other builds and node versions, and stale temp files, when it writes its own", async () => {
    await mkdir(cacheDir(), { mode: 0o700 });
    const foreign = join(cacheDir(), "cli-0123456789abcdef-v0.0.0-x64.v8cache");
    await writeFile(foreign, "an older build's cache", { mode: 0o600 });
    const leftover = join(cacheDir(), "cli-0123456789abcdef-v0.0.0-x64.v8cache.4242.tmp");
    await writeFile(leftover, "a write killed before its rename", { mode: 0o600 });
    const unrelated = join(cacheDir(), "notes.txt");
    await writeFile(unrelated, "kept", { mode: 0o600 });
    await help();
    const files = await readdir(cacheDir());
    expect(files).toContain("notes.txt");
    expect(files.filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(files).not.toContain("cli-0123456789abcdef-v0.0.0-x64.v8cache");
    expect(files.filter((name) => name.endsWith(".v8cache"))).toHaveLength(1);
  });

  it("runs the command when the cache cannot be written, and when it is turned off", async () => {
    // A file where the cache's directory should be: no user, not even root, can create it.
    const blocked = join(cacheHome, "blocked");
    await writeFile(blocked, "");
    await help({ XDG_CACHE_HOME: blocked });
    expect(await readFile(blocked, "utf8")).toBe("");

    await help({ NODE_DISABLE_COMPILE_CACHE: "1" });
    expect(await readdir(cacheHome)).toEqual(["blocked"]);
  });
});

describe("codeCacheLocation", () => {
  it("is $XDG_CACHE_HOME/rekey, else ~/.cache/rekey, one file per build, node and arch", () => {
    const at = codeCacheLocation({ XDG_CACHE_HOME: "/var/cache/me" }, "/home/me", "abc123");
    expect(at).toEqual({
      directory: "/var/cache/me/rekey",
      file: `/var/cache/me/rekey/cli-abc123-${process.version}-${process.arch}.v8cache`,
    });
    // A relative XDG_CACHE_HOME is invalid (XDG Base Directory spec): ignored.
    expect(codeCacheLocation({ XDG_CACHE_HOME: "cache" }, "/home/me", "abc123")?.directory).toBe(
      "/home/me/.cache/rekey",
    );
    expect(codeCacheLocation({}, "", "abc123")).toBeUndefined();
    expect(
      codeCacheLocation({ NODE_DISABLE_COMPILE_CACHE: "1" }, "/home/me", "abc"),
    ).toBeUndefined();
  });
});

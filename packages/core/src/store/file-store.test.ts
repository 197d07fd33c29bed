import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mountTinyDisk } from "../delivery/full-disk.test-helper.js";
import { type ErrorCode, isRekeyError } from "../errors.js";
import { verifyAuditChain } from "./audit-chain.js";
import { runChild, runChildSync, startChild, storeBuild } from "./child-process.test-helper.js";
import { describeStoreContract, sampleStoreData } from "./contract-suite.js";
import { createFileStore, type FileStore, resolveStoreDir } from "./file-store.js";
import { changeCredentialsWhenLogGrows } from "./file-store-faults.test-helper.js";
import type { AuditEventInput } from "./types.js";

async function makeRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), "rekey-file-store-"));
}

describeStoreContract(
  "file",
  async () => {
    const root = await makeRoot();
    const dir = join(root, "rekey");
    const options = { dir, pollIntervalMs: 200 };
    return {
      store: createFileStore(options),
      openAnother: async () => createFileStore(options),
      crashLockHolder: async (name, leaseMs) => {
        const { child, firstLine, exited } = await startChild("hold-lock.mjs", {
          dir,
          name,
          leaseMs,
        });
        expect(await firstLine).toBe("locked");
        child.kill("SIGKILL");
        expect((await exited).signal).toBe("SIGKILL");
      },
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  { appendsAuditWithWrite: true },
);

/**
 * A store of `dir` that stalls the whole process once, at a clock read between its read and its
 * write, while another process writes version 2 ("other process"). The stalled write lock goes
 * stale and the other takes it over, as it would from a suspended laptop or a frozen VM.
 */
async function storeStallingWhileAnotherWrites(
  dir: string,
): Promise<{ stalling: FileStore; stalled: () => boolean }> {
  const buildDir = await storeBuild();
  let stallOnce = true;
  const stalling = createFileStore({
    dir,
    clock: {
      now: () => {
        if (stallOnce) {
          stallOnce = false;
          const out = runChildSync(buildDir, "write-once.mjs", {
            dir,
            version: 1,
            data: sampleStoreData("other process"),
          });
          expect(JSON.parse(out)).toEqual({ ok: true });
        }
        return Date.now();
      },
    },
  });
  return { stalling, stalled: () => !stallOnce };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const error = await caught(promise);
  expect(isRekeyError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as Error;
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

const event: AuditEventInput = {
  at: "2025-01-01T00:00:00.000Z",
  surface: "cli",
  profile: "default",
  principal: "operator",
  action: "rotate",
  outcome: "success",
  oldFingerprint: "fp:0123456789ab",
  newFingerprint: "fp:ba9876543210",
};

describe("file store", () => {
  let root: string;
  let dir: string;
  let store: FileStore;

  beforeEach(async () => {
    root = await makeRoot();
    dir = join(root, "nested", "rekey");
    store = createFileStore({ dir, pollIntervalMs: 200 });
  });

  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  describe("repeated reads", () => {
    it("see in-place edits, mode changes and other writers even after a cached parse", async () => {
      const written = await store.compareAndSet(0, sampleStoreData("first"));
      expect(written.ok).toBe(true);
      await store.read();
      const path = join(dir, "credentials.json");

      // Another process edits the file in place (no rename): same inode, new content.
      const text = await readFile(path, "utf8");
      await writeFile(path, text.replace(/"version": ?1,/, '"version":7,'));
      expect((await store.read()).version).toBe(7);

      await chmod(path, 0o644);
      await expect(store.read()).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
      await chmod(path, 0o600);

      const other = createFileStore({ dir });
      expect((await other.compareAndSet(7, sampleStoreData("second"))).ok).toBe(true);
      await other.close();
      expect((await store.read()).data).toEqual(sampleStoreData("second"));

      // The cached parse is shared, frozen: a write to it throws and never reaches the next read.
      const snapshot = await store.read();
      expect(() => {
        (snapshot.data as { profiles: unknown }).profiles = {};
      }).toThrow(TypeError);
      expect((await store.read()).data).toEqual(sampleStoreData("second"));
    });
  });

  describe("read({ maxAgeMs })", () => {
    it("answers from the last confirmed parse within maxAgeMs, and confirms again after", async () => {
      let now = Date.parse("2026-11-27T12:00:00Z");
      const dir = join(await makeRoot(), "rekey");
      const store = createFileStore({ dir, clock: { now: () => now } });
      const other = createFileStore({ dir });
      try {
        expect((await store.compareAndSet(0, sampleStoreData("one"))).ok).toBe(true);
        expect((await store.read()).version).toBe(1); // confirmed at `now`
        expect((await other.compareAndSet(1, sampleStoreData("two"))).ok).toBe(true);

        now += 100;
        // Another handle's write is not seen while the confirmation is young enough...
        expect((await store.read({ maxAgeMs: 100 })).data).toEqual(sampleStoreData("one"));
        // ...but a plain read, or an older confirmation, looks at the file again.
        expect((await store.read()).data).toEqual(sampleStoreData("two"));
        now += 101;
        expect((await other.compareAndSet(2, sampleStoreData("three"))).ok).toBe(true);
        now += 101;
        expect((await store.read({ maxAgeMs: 100 })).data).toEqual(sampleStoreData("three"));

        // A clock that went back is not trusted: the file is looked at again.
        expect((await other.compareAndSet(3, sampleStoreData("four"))).ok).toBe(true);
        now -= 5_000;
        expect((await store.read({ maxAgeMs: 100 })).data).toEqual(sampleStoreData("four"));
      } finally {
        await other.close();
        await store.close();
      }
    });

    it("never answers from a parse older than its own write, even one racing it", async () => {
      const dir = join(await makeRoot(), "rekey");
      const store = createFileStore({ dir });
      try {
        // Written by another handle, so this one's next read parses the file.
        const other = createFileStore({ dir });
        expect((await other.compareAndSet(0, sampleStoreData("one"))).ok).toBe(true);
        await other.close();
        // A read that has the old file in hand and finishes after this handle's write must not
        // become the answer. Real timing rarely lines that up, so the next file read is held
        // until the write is done (an instance-level delay, not a fake).
        const internals = store as unknown as {
          readPrivateFileWithIdentity(path: string): Promise<unknown>;
        };
        const readFile = internals.readPrivateFileWithIdentity.bind(store);
        let releaseRead = () => {};
        const writeDone = new Promise<void>((resolve) => {
          releaseRead = resolve;
        });
        let held = false;
        internals.readPrivateFileWithIdentity = async (path) => {
          const result = await readFile(path);
          if (!held) {
            held = true;
            await writeDone;
          }
          return result;
        };
        const racing = store.read();
        await vi.waitFor(() => expect(held).toBe(true));
        expect((await store.compareAndSet(1, sampleStoreData("two"))).ok).toBe(true);
        releaseRead();
        expect((await racing).data).toEqual(sampleStoreData("one"));
        expect((await store.read({ maxAgeMs: 60_000 })).data).toEqual(sampleStoreData("two"));
      } finally {
        await store.close();
      }
    });
  });

  describe("location", () => {
    it("resolves REKEY_HOME, then XDG_CONFIG_HOME/rekey, then ~/.config/rekey", () => {
      expect(resolveStoreDir({ REKEY_HOME: "/srv/keys", XDG_CONFIG_HOME: "/x", HOME: "/h" })).toBe(
        "/srv/keys",
      );
      expect(resolveStoreDir({ XDG_CONFIG_HOME: "/x", HOME: "/h" })).toBe("/x/rekey");
      expect(resolveStoreDir({ REKEY_HOME: "", HOME: "/h" })).toBe("/h/.config/rekey");
      expect(resolveStoreDir({})).toBe(join(homedir(), ".config", "rekey"));
    });

    it("uses the env when no dir is given, and reports the credentials path", async () => {
      const fromEnv = createFileStore({ env: { REKEY_HOME: dir } });
      expect(fromEnv.location).toBe(join(dir, "credentials.json"));
      await fromEnv.close();
    });
  });

  describe("permissions", () => {
    it("creates the directory 0700 and every file 0600", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      await store.appendAudit(event);
      const lock = await store.lock("agent:7", { leaseMs: 5000, waitMs: 0 });
      expect(await mode(dir)).toBe(0o700);
      expect(await mode(join(root, "nested"))).toBe(0o700);
      expect(await mode(join(dir, "credentials.json"))).toBe(0o600);
      expect(await mode(join(dir, "audit.jsonl"))).toBe(0o600);
      expect(await mode(join(dir, "locks"))).toBe(0o700);
      await lock.release();
    });

    it("refuses a credentials file that others can read, with a chmod hint", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      await chmod(join(dir, "credentials.json"), 0o644);
      const error = await expectCode(store.read(), "STORE_UNAVAILABLE");
      expect((error as { hint?: string }).hint).toContain("chmod 600");
      await expectCode(store.compareAndSet(1, sampleStoreData("two")), "STORE_UNAVAILABLE");
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(health.problems.join("\n")).toContain("chmod 600");
    });

    it("refuses a directory that others can enter", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      await chmod(dir, 0o755);
      const error = await expectCode(store.read(), "STORE_UNAVAILABLE");
      expect((error as { hint?: string }).hint).toContain("chmod 700");
      await expectCode(store.checkWritable(), "STORE_UNAVAILABLE");
      expect((await store.health()).ok).toBe(false);
    });
  });

  it("names a file given as the store's directory as such, not as a mode to chmod", async () => {
    // REKEY_HOME=~/.rekey/credentials.json (the file, not its directory), mode 644.
    const file = join(root, "not-a-dir");
    await writeFile(file, "{}", { mode: 0o644 });
    const misplaced = createFileStore({ dir: file });
    for (const operation of [() => misplaced.read(), () => misplaced.checkWritable()]) {
      const error = await expectCode(operation(), "STORE_UNAVAILABLE");
      expect(error.message).toBe(`${file} is not a directory`);
      expect((error as { hint?: string }).hint).toContain("REKEY_HOME");
      expect(`${error.message} ${(error as { hint?: string }).hint}`).not.toContain("chmod");
    }
    expect(await readFile(file, "utf8")).toBe("{}");
  });

  describe("ownership (ssh StrictModes)", () => {
    // Tests run as root here; elsewhere a file cannot be given to another user.
    const isRoot = process.getuid?.() === 0;
    const nobody = 65534;

    it.runIf(isRoot)(
      "refuses a store directory and files another user made, and leaves them theirs",
      async () => {
        await store.compareAndSet(0, sampleStoreData("theirs"));
        await store.appendAudit(event);
        for (const path of [dir, join(dir, "credentials.json"), join(dir, "audit.jsonl")]) {
          await chown(path, nobody, nobody);
        }
        const before = await readFile(join(dir, "credentials.json"), "utf8");
        const error = await expectCode(store.read(), "STORE_UNAVAILABLE");
        expect(error.message).toContain(`owned by uid ${nobody}`);
        expect((error as { hint?: string }).hint).toContain("store's owner");
        await expectCode(store.compareAndSet(1, sampleStoreData("mine")), "STORE_UNAVAILABLE");
        await expectCode(store.appendAudit(event), "STORE_UNAVAILABLE");
        await expectCode(store.checkWritable(), "STORE_UNAVAILABLE");
        await expectCode(store.lock("agent:7", { leaseMs: 5000, waitMs: 0 }), "STORE_UNAVAILABLE");
        const health = await store.health();
        expect(health.ok).toBe(false);
        expect(health.problems.join("\n")).toContain(`owned by uid ${nobody}`);
        // Nothing was written, and nothing changed hands (root never makes them root:root).
        expect(await readFile(join(dir, "credentials.json"), "utf8")).toBe(before);
        expect((await stat(join(dir, "credentials.json"))).uid).toBe(nobody);
        expect((await readdir(dir)).sort()).toEqual([
          "audit.jsonl",
          "credentials.json",
          "master.key",
        ]);
      },
    );

    it.runIf(isRoot)("refuses a credentials file another user owns in our directory", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      await chown(join(dir, "credentials.json"), nobody, nobody);
      await expectCode(store.read(), "STORE_UNAVAILABLE");
      await expectCode(store.compareAndSet(1, sampleStoreData("two")), "STORE_UNAVAILABLE");
      expect((await stat(join(dir, "credentials.json"))).uid).toBe(nobody);
    });
  });

  describe("symbolic links", () => {
    it("refuses a dangling audit.jsonl link instead of creating its target", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const target = join(root, "elsewhere.log");
      await symlink(target, join(dir, "audit.jsonl"));
      const error = await expectCode(store.appendAudit(event), "STORE_UNAVAILABLE");
      expect(error.message).toContain("symbolic link");
      await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      expect((await store.health()).problems.join("\n")).toContain("symbolic link");
    });

    it("appends nothing to another private file an audit.jsonl link points at", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const target = join(root, "victim");
      await writeFile(target, "precious\n", { mode: 0o600 });
      await symlink(target, join(dir, "audit.jsonl"));
      await expectCode(store.appendAudit(event), "STORE_UNAVAILABLE");
      await expectCode(store.readAudit(), "STORE_UNAVAILABLE");
      expect(await readFile(target, "utf8")).toBe("precious\n");
    });

    it("refuses a credentials.json link, even after a cached read", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      await store.read();
      const real = join(root, "real.json");
      await writeFile(real, await readFile(join(dir, "credentials.json")), { mode: 0o600 });
      await rm(join(dir, "credentials.json"));
      await symlink(real, join(dir, "credentials.json"));
      await expectCode(store.read(), "STORE_UNAVAILABLE");
    });

    it("refuses a locks/ link and a store directory that is a link", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const elsewhere = join(root, "elsewhere");
      await mkdir(elsewhere, { mode: 0o700 });
      await symlink(elsewhere, join(dir, "locks"));
      await expectCode(store.lock("agent:7", { leaseMs: 5000, waitMs: 0 }), "STORE_UNAVAILABLE");
      expect(await readdir(elsewhere)).toEqual([]);

      const linked = join(root, "linked");
      await symlink(dir, linked);
      const viaLink = createFileStore({ dir: linked });
      try {
        await expectCode(viaLink.read(), "STORE_UNAVAILABLE");
        await expectCode(viaLink.checkWritable(), "STORE_UNAVAILABLE");
        expect((await lstat(linked)).isSymbolicLink()).toBe(true);
      } finally {
        await viaLink.close();
      }
    });
  });

  describe("corrupt content", () => {
    const corruptions: Record<string, string> = {
      empty: "",
      whitespace: "\n  \n",
      truncated: '{ "version": 3, "data": { "schemaVersion": 2, "prof',
      "not JSON": "lf_this_is_a_raw_secret_key_0123456789 not json",
      "not an envelope": '{ "profiles": {} }',
      "schema-invalid": JSON.stringify({
        version: 2,
        data: {
          schemaVersion: 2,
          principals: {},
          profiles: { default: { baseUrl: "x", actsAs: 3 } },
          idempotency: {},
        },
      }),
      "unknown field": JSON.stringify({
        version: 2,
        data: { schemaVersion: 2, principals: {}, profiles: {}, idempotency: {}, extra: true },
      }),
    };

    for (const [label, content] of Object.entries(corruptions)) {
      it(`treats a ${label} file as STORE_CORRUPT and never overwrites it`, async () => {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const path = join(dir, "credentials.json");
        await writeFile(path, content, { mode: 0o600 });
        const error = await expectCode(store.read(), "STORE_CORRUPT");
        expect(error.message).toContain(path);
        expect(error.message).not.toContain("lf_this_is_a_raw_secret");
        await expectCode(store.compareAndSet(0, sampleStoreData("one")), "STORE_CORRUPT");
        await expectCode(store.compareAndSet(2, sampleStoreData("one")), "STORE_CORRUPT");
        expect(await readFile(path, "utf8")).toBe(content);
        expect((await store.health()).ok).toBe(false);
      });
    }

    it("refuses a store written by a newer rekey, leaving it untouched", async () => {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const path = join(dir, "credentials.json");
      const content = JSON.stringify({ version: 7, data: { schemaVersion: 4, profiles: {} } });
      await writeFile(path, content, { mode: 0o600 });
      const error = await expectCode(store.read(), "STORE_CORRUPT");
      expect(error.message).toContain("newer rekey");
      await expectCode(store.compareAndSet(7, sampleStoreData("one")), "STORE_CORRUPT");
      expect(await readFile(path, "utf8")).toBe(content);
    });

    it("says where the schema is violated without echoing the value", async () => {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const data = sampleStoreData("one");
      const broken = structuredClone(data) as unknown as {
        principals: Record<string, { key: unknown }>;
      };
      const [id] = Object.keys(broken.principals);
      (broken.principals[id as string] as { key: unknown }).key = 12345;
      await writeFile(
        join(dir, "credentials.json"),
        JSON.stringify({ version: 1, sealing: { storeId: "s" }, data: broken }),
        { mode: 0o600 },
      );
      const error = await expectCode(store.read(), "STORE_CORRUPT");
      expect(error.message).toContain(`principals.${id}.key`);
      expect(error.message).not.toContain("12345");
    });

    it("refuses to append after a torn audit line and leaves the log as it was", async () => {
      await store.appendAudit(event);
      const path = join(dir, "audit.jsonl");
      const torn = `${await readFile(path, "utf8")}{"seq":2,"at":"2025`;
      await writeFile(path, torn);
      await expectCode(store.appendAudit(event), "STORE_CORRUPT");
      await expectCode(store.readAudit(), "STORE_CORRUPT");
      expect(await readFile(path, "utf8")).toBe(torn);
    });

    it("chains correctly past the 64 KiB an append reads, and still refuses a bad last line", async () => {
      const path = join(dir, "audit.jsonl");
      const size = async () => (await stat(path).catch(() => ({ size: 0 }))).size;
      while ((await size()) < 70 * 1024) {
        for (let count = 0; count < 50; count++) await store.appendAudit(event);
      }
      const entries = await store.readAudit();
      expect(verifyAuditChain(entries)).toMatchObject({ ok: true, count: entries.length });
      expect(entries.at(-1)?.seq).toBe(entries.length);

      // The last line is no audit entry: appending after it is refused.
      await writeFile(path, `${await readFile(path, "utf8")}{"seq":"x"}\n`);
      await expectCode(store.appendAudit(event), "STORE_CORRUPT");
    });

    it("detects an audit entry edited on disk at its seq", async () => {
      for (let count = 0; count < 3; count++) await store.appendAudit(event);
      const path = join(dir, "audit.jsonl");
      const lines = (await readFile(path, "utf8")).trimEnd().split("\n");
      lines[1] = (lines[1] ?? "").replace('"outcome":"success"', '"outcome":"failure"');
      await writeFile(path, `${lines.join("\n")}\n`);
      expect(verifyAuditChain(await store.readAudit())).toMatchObject({ ok: false, brokenAt: 2 });
    });
  });

  describe("atomic writes", () => {
    it("reads a missing store as empty without creating anything", async () => {
      expect((await store.read()).version).toBe(0);
      expect(await caught(stat(dir))).toMatchObject({ code: "ENOENT" });
    });

    it("leaves no temp files behind", async () => {
      for (let version = 0; version < 20; version++) {
        await store.compareAndSet(version, sampleStoreData(`v${version}`));
      }
      expect((await readdir(dir)).sort()).toEqual(["credentials.json", "master.key"]);
      expect(await store.health()).toMatchObject({ ok: true, problems: [] });
    });

    it("never shows a partial file to a reader in another process", async () => {
      await store.compareAndSet(0, sampleStoreData("start"));
      const reader = await startChild("read-loop.mjs", { dir, durationMs: 1500 });
      expect(await reader.firstLine).toBe("ready");
      let version = 1;
      const writesEnd = Date.now() + 1200;
      while (Date.now() < writesEnd) {
        // Larger data makes a torn read more likely if writes were not atomic.
        const data = sampleStoreData(`v${version}-${"x".repeat(20_000)}`);
        const result = await store.compareAndSet(version, data);
        expect(result.ok).toBe(true);
        version += 1;
      }
      const { code, stdout } = await reader.exited;
      expect(code).toBe(0);
      const report = JSON.parse(stdout.split("\n")[1] ?? "{}") as {
        reads: number;
        failures: string[];
        versions: number;
      };
      expect(report.failures).toEqual([]);
      expect(report.reads).toBeGreaterThan(0);
      expect(report.versions).toBeGreaterThan(1);
    });

    it("drops its write, not another's, when it stalled past the write lock's staleness", async () => {
      await store.compareAndSet(0, sampleStoreData("start"));
      const { stalling, stalled } = await storeStallingWhileAnotherWrites(dir);
      try {
        const result = await stalling.compareAndSet(1, sampleStoreData("stalled process"));
        expect(result.ok).toBe(false);
        expect(stalled()).toBe(true);
        const expected = { version: 2, data: sampleStoreData("other process") };
        if (!result.ok) expect(result.current).toEqual(expected);
        const fresh = createFileStore({ dir });
        expect(await fresh.read()).toEqual(expected);
        await fresh.close();
        expect((await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
      } finally {
        await stalling.close();
      }
    });

    it("loses no update when four processes increment concurrently", async () => {
      const data = sampleStoreData("0");
      await store.compareAndSet(0, data);
      const times = 25;
      const outputs = await Promise.all(
        Array.from({ length: 4 }, () => runChild("increment.mjs", { dir, times })),
      );
      const final = await store.read();
      expect(Object.values(final.data.principals)[0]?.name).toBe(String(4 * times));
      expect(final.version).toBe(1 + 4 * times);
      expect(outputs).toHaveLength(4);
      expect((await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    });
  });

  describe("audit entries with a write (WriteOptions.audit)", () => {
    const entryEvent: AuditEventInput = { ...event, requestId: "with-write" };

    it("writes neither the data nor the entry when the log cannot take it", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const target = join(root, "elsewhere.log");
      await symlink(target, join(dir, "audit.jsonl"));
      await expectCode(
        store.compareAndSet(1, sampleStoreData("two"), { audit: [entryEvent] }),
        "STORE_UNAVAILABLE",
      );
      const fresh = createFileStore({ dir });
      expect(await fresh.read()).toEqual({ version: 1, data: sampleStoreData("one") });
      await fresh.close();
      await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      expect((await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    });

    it("writes neither when an entry does not match the audit schema", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const bad = { ...entryEvent, outcome: "maybe" } as unknown as AuditEventInput;
      await expectCode(
        store.compareAndSet(1, sampleStoreData("two"), { audit: [bad] }),
        "INTERNAL",
      );
      expect(await store.read()).toEqual({ version: 1, data: sampleStoreData("one") });
      expect(await store.readAudit()).toEqual([]);
    });

    it("throws, not a conflict, when the file changed between the append and the rename", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      await store.appendAudit({ ...event, requestId: "before" });
      const change = changeCredentialsWhenLogGrows(dir);
      const outcome = await caught(
        store.compareAndSet(1, sampleStoreData("two"), { audit: [entryEvent], durable: false }),
      );
      change.stop();
      expect(change.changed()).toBe(1);
      // A conflict would have its caller re-read and write again, appending the entry twice.
      expect(isRekeyError(outcome, "STORE_UNAVAILABLE"), String(outcome)).toBe(true);
      const fresh = createFileStore({ dir });
      expect((await fresh.readAudit()).map((entry) => entry.requestId)).toEqual([
        "before",
        "with-write",
      ]);
      expect((await fresh.read()).version).toBe(1);
      await fresh.close();
    });

    it("appends nothing when it stalled past the write lock's staleness (a conflict, retried)", async () => {
      await store.compareAndSet(0, sampleStoreData("start"));
      // Another process takes the stale lock and writes while this one is stalled. A refusal
      // that appended would make the caller, who re-reads and writes again, append the entry
      // twice.
      const { stalling, stalled } = await storeStallingWhileAnotherWrites(dir);
      try {
        const result = await stalling.compareAndSet(1, sampleStoreData("stalled process"), {
          audit: [entryEvent],
          durable: false,
        });
        expect(stalled()).toBe(true);
        expect(result.ok).toBe(false);
        expect(await store.readAudit()).toEqual([]);
      } finally {
        await stalling.close();
      }
    });
  });

  describe("watch", () => {
    it("notices a write by another process", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      let calls = 0;
      const unsubscribe = store.watch(() => {
        calls += 1;
      });
      // Let the watcher take its baseline before the other process writes.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const out = await runChild("write-once.mjs", {
        dir,
        version: 1,
        data: sampleStoreData("two"),
      });
      expect(JSON.parse(out)).toEqual({ ok: true });
      const deadline = Date.now() + 5000;
      while (calls === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(calls).toBeGreaterThanOrEqual(1);
      unsubscribe();
      expect((await store.read()).data).toEqual(sampleStoreData("two"));
    });

    it("notices the first write into a directory that did not exist when watching began", async () => {
      let calls = 0;
      const unsubscribe = store.watch(() => {
        calls += 1;
      });
      await runChild("write-once.mjs", { dir, version: 0, data: sampleStoreData("one") });
      const deadline = Date.now() + 5000;
      while (calls === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(calls).toBeGreaterThanOrEqual(1);
      unsubscribe();
    });
  });

  describe("checkWritable and health", () => {
    it("fails when the directory path runs through a regular file", async () => {
      await mkdir(root, { recursive: true });
      const file = join(root, "a-file");
      await writeFile(file, "x");
      const blocked = createFileStore({ dir: join(file, "rekey") });
      await expectCode(blocked.checkWritable(), "STORE_UNAVAILABLE");
      await expectCode(blocked.compareAndSet(0, sampleStoreData("one")), "STORE_UNAVAILABLE");
      // Not an empty store: reading and health say the path is unusable.
      await expectCode(blocked.read(), "STORE_UNAVAILABLE");
      const health = await blocked.health();
      expect(health.ok).toBe(false);
      expect(health.problems.join(" ")).toMatch(/ENOTDIR/);
      await blocked.close();
    });

    it("fails in a private directory that even root cannot create files in", async () => {
      // /proc/<pid>/fd is mode 0500 and refuses new entries whatever the caller's privileges.
      const readOnly = createFileStore({ dir: `/proc/${process.pid}/fd` });
      await expectCode(readOnly.checkWritable(), "STORE_UNAVAILABLE");
      await readOnly.close();
    });

    // Filling a disk takes a mount, so root (as here and in CI); elsewhere this is skipped.
    it.runIf(process.getuid?.() === 0)(
      "reports a disk too full for the next write, before a rotation finds out",
      async () => {
        const disk = mountTinyDisk("1m");
        if (disk === undefined) throw new Error("root could not mount a tmpfs");
        const onDisk = createFileStore({ dir: join(disk.dir, "rekey") });
        try {
          await onDisk.compareAndSet(0, sampleStoreData("one"));
          expect(await onDisk.health()).toMatchObject({ ok: true, problems: [] });

          const filler = join(disk.dir, "filler");
          await writeFile(filler, Buffer.alloc(1024 * 1024)).catch(() => undefined);
          const health = await onDisk.health();
          expect(health.ok).toBe(false);
          expect(health.problems).toEqual([
            expect.stringMatching(
              /^the disk holding .* has \d+ KiB free; the next write of credentials\.json needs about \d+ KiB/,
            ),
          ]);
          // It is right: the write fails, and the store keeps what it had.
          await expectCode(onDisk.compareAndSet(1, sampleStoreData("two")), "STORE_UNAVAILABLE");
          expect((await onDisk.read()).version).toBe(1);

          await rm(filler);
          expect(await onDisk.health()).toMatchObject({ ok: true, problems: [] });
        } finally {
          await onDisk.close();
          disk.unmount();
        }
      },
    );

    it("reports leftover temp files from an interrupted write", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const leftover = join(dir, ".credentials.json.abc123.tmp");
      await writeFile(leftover, "{", { mode: 0o600 });
      const old = new Date(Date.now() - 3_600_000);
      await utimes(leftover, old, old);
      const health = await store.health();
      expect(health.ok).toBe(false);
      expect(health.problems.join("\n")).toContain("leftover temp file");
      expect(health.kind).toBe("file");
      expect(health.location).toBe(join(dir, "credentials.json"));
    });

    it("removes a crashed write's temp file (a live key) on the next write, after a grace", async () => {
      await store.compareAndSet(0, sampleStoreData("one"));
      const orphan = join(dir, ".credentials.json.abc123.tmp");
      const young = join(dir, ".credentials.json.def456.tmp");
      await writeFile(orphan, "{ a live key }", { mode: 0o600 });
      await writeFile(young, "{ a write in flight }", { mode: 0o600 });
      const old = new Date(Date.now() - 3_600_000);
      await utimes(orphan, old, old);
      await store.compareAndSet(1, sampleStoreData("two"));
      const names = await readdir(dir);
      expect(names).not.toContain(".credentials.json.abc123.tmp");
      // Younger than the grace: perhaps another process's write, so it stays.
      expect(names).toContain(".credentials.json.def456.tmp");
      await utimes(young, old, old);
      // checkWritable (rotate, register and `doctor --repair` call it) sweeps too.
      await store.checkWritable();
      expect(await readdir(dir)).not.toContain(".credentials.json.def456.tmp");
      expect((await store.health()).ok).toBe(true);
    });

    it("refuses every operation after close", async () => {
      await store.close();
      await expectCode(store.read(), "STORE_UNAVAILABLE");
    });
  });

  describe("named locks", () => {
    it("keeps names that sanitize alike apart, and keeps odd names inside the store", async () => {
      const colon = await store.lock("agent:7", { leaseMs: 5000, waitMs: 0 });
      const underscore = await store.lock("agent_7", { leaseMs: 5000, waitMs: 0 });
      const traversal = await store.lock("../../escape", { leaseMs: 5000, waitMs: 0 });
      expect((await readdir(join(dir, "locks"))).length).toBe(3);
      expect((await readdir(root)).sort()).toEqual(["nested"]);
      for (const lock of [colon, underscore, traversal]) await lock.release();
      expect(await readdir(join(dir, "locks"))).toEqual([]);
    });

    it("releases the locks it holds on close", async () => {
      await store.lock("operator", { leaseMs: 5000, waitMs: 0 });
      await store.close();
      const other = createFileStore({ dir });
      const lock = await other.lock("operator", { leaseMs: 5000, waitMs: 0 });
      await lock.release();
      await other.close();
    });
  });
});

import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestClock, type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { afterEach, describe, expect, it } from "vitest";
import { createRekey } from "../../engine/create-rekey.js";
import { isRekeyError } from "../../errors.js";
import { agent } from "../../principal.js";
import { runChild } from "../child-process.test-helper.js";
import { sampleStoreData } from "../contract-suite.js";
import { openSealedBackup, readKeyFile } from "../encryption/index.js";
import { createFileStore, type FileStore } from "../file-store.js";
import { migrateStoreData } from "../schema.js";

// Stores written by rekey 0.1 (schema 1), each with the sandbox state it ran against, made by
// `fixtures/generate-schema-1.mjs` from commit 5097de9.
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

interface Migrated {
  dir: string;
  store: FileStore;
  sandbox: RunningSandbox;
  original: string;
}

const open: Migrated[] = [];
afterEach(async () => {
  for (const item of open.splice(0)) {
    await item.store.close();
    await item.sandbox.close();
    await rm(item.dir, { recursive: true, force: true });
  }
});

/** The original text a migration's sealed backup keeps, opened with the store's own key. */
async function openBackup(dir: string, name: string): Promise<string> {
  const key = await readKeyFile(join(dir, "master.key"));
  return openSealedBackup(await readFile(join(dir, name), "utf8"), key ? [key] : [], name);
}

/** Lays a fixture out in a temp dir, its faucet URL pointed at a sandbox restarted on its state. */
async function lay(name: string): Promise<Migrated> {
  const source = join(FIXTURES, `schema-1-${name}`);
  const dir = await mkdtemp(join(tmpdir(), `rekey-migrate-${name}-`));
  await copyFile(join(source, "sandbox.json"), join(dir, "sandbox.json"));
  const sandbox = await startSandbox({ dataFile: join(dir, "sandbox.json") });
  const storeDir = join(dir, "store");
  await mkdir(storeDir, { mode: 0o700 });
  // The fixtures spell the sandbox's keys "sandbox-key:…" so that nothing key-shaped sits in the
  // tree; back to "lf_…", each document is byte for byte what rekey 0.1 wrote.
  const text = (await readFile(join(source, "credentials.json"), "utf8")).replaceAll(
    '"sandbox-key:',
    '"lf_',
  );
  const original = text.replace(/http:\/\/127\.0\.0\.1:\d+\/ai-agents\/api/g, sandbox.url);
  await writeFile(join(storeDir, "credentials.json"), original, { mode: 0o600 });
  // A checkout does not keep file modes: the store's files are 0600 as rekey wrote them.
  await copyFile(join(source, "audit.jsonl"), join(storeDir, "audit.jsonl"));
  await chmod(join(storeDir, "audit.jsonl"), 0o600);
  const store = createFileStore({ dir: storeDir });
  const laid = { dir: storeDir, store, sandbox, original };
  open.push(laid);
  return laid;
}

/**
 * A Rekey on the laid-out store whose clock stands a second after the fixture's last write:
 * the cooldowns its rotations started are still running, as they were when it was written.
 */
function engine(laid: Migrated, profile = "default") {
  const savedAt = [...laid.original.matchAll(/"savedAt": "([^"]+)"/g)].map((m) =>
    Date.parse(m[1] as string),
  );
  const clock = createTestClock(Math.max(...savedAt) + 1000);
  return createRekey({ store: laid.store, surface: "library", profile, env: {}, clock });
}

describe("migration of schema-1 stores written by rekey 0.1", () => {
  it("migrates on first read, once, keeping a 0600 copy of the original beside it", async () => {
    const laid = await lay("idempotency");
    const before = JSON.parse(laid.original).version as number;
    const snapshot = await laid.store.read();
    expect(snapshot.data.schemaVersion).toBe(3);
    expect(snapshot.version).toBe(before + 1);
    const onDisk = JSON.parse(await readFile(join(laid.dir, "credentials.json"), "utf8"));
    expect(onDisk.data.schemaVersion).toBe(3);
    const backup = join(laid.dir, "credentials.schema-1.json");
    expect(await openBackup(laid.dir, "credentials.schema-1.json")).toBe(laid.original);
    expect((await stat(backup)).mode & 0o777).toBe(0o600);
    // A second read does not migrate again.
    expect((await laid.store.read()).version).toBe(before + 1);
  });

  it("is migrated once when several processes open the store together", async () => {
    const laid = await lay("two-profiles");
    const before = JSON.parse(laid.original).version as number;
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () => runChild("read-version.mjs", { dir: laid.dir })),
    );
    const versions = outputs.map((line) => JSON.parse(line).version as number);
    expect(new Set(versions)).toEqual(new Set([before + 1]));
    expect(await openBackup(laid.dir, "credentials.schema-1.json")).toBe(laid.original);
  });

  it("keeps an unfinished rotation, which the next operation resolves", async () => {
    const laid = await lay("unfinished-rotation");
    const rekey = engine(laid);
    const { data } = await laid.store.read();
    const operator = Object.values(data.principals).find((r) => r.principal === "operator:1");
    expect(operator?.intent).toMatchObject({ principal: "operator:1", phase: "requested" });
    expect(Object.values(data.principals).find((r) => r.principal === "agent:1")).toMatchObject({
      operatorId: 1,
      name: "worker",
    });
    // The crash came before the faucet was asked: the old key still works.
    const resolutions = await rekey.resolvePending();
    expect(resolutions.map((r) => r.outcome)).toEqual(["not_rotated"]);
    const status = await rekey.status();
    expect(status.pendingRotation).toBeUndefined();
    expect((await rekey.whoami()).type).toBe("operator");
    // The agent rotated before the migration is still in its cooldown.
    await expect(rekey.rotateKey({ target: agent(1) })).rejects.toMatchObject({
      code: "COOLDOWN_ACTIVE",
    });
    await rekey.close();
  });

  it("replays an idempotency key used before the migration instead of rotating again", async () => {
    const laid = await lay("idempotency");
    const rekey = engine(laid);
    let ran = 0;
    const replay = await rekey.withIdempotency("deploy-2026-12-01", '{"force":false}', async () => {
      ran += 1;
      return {};
    });
    expect(ran).toBe(0);
    expect(replay).toMatchObject({ replayed: true, result: { rotated: true } });
    expect(laid.sandbox.stats().rotations).toBe(0);
    await rekey.close();
  });

  it("merges two profiles holding one agent, keeps the other key, and settles it with the faucet", async () => {
    const laid = await lay("two-profiles");
    const { data } = await laid.store.read();
    const records = Object.values(data.principals).filter((r) => r.principal === "agent:1");
    expect(records).toHaveLength(1);
    expect(records[0]?.alternates).toHaveLength(1);
    expect(data.profiles.ag).toMatchObject({ actsAs: "agent:1" });
    // The agent's own profile now sees the live key and the operator's rotation of it.
    const asAgent = engine(laid, "ag");
    const status = await asAgent.status();
    expect(status.fingerprint).toBe(records[0]?.fingerprint);
    expect(status.cooldownRemainingSeconds).toBeGreaterThan(0);
    expect((await asAgent.whoami()).type).toBe("agent");
    const checks = await engine(laid, "op").checkKeys();
    expect(checks.filter((c) => c.principal === "agent:1")).toEqual([
      expect.objectContaining({ current: true, alive: true }),
      expect.objectContaining({ current: false, alive: false }),
    ]);
    const settled = await engine(laid, "op").settleAlternates();
    expect(settled).toEqual([expect.objectContaining({ alive: false, current: false })]);
    const after = Object.values((await laid.store.read()).data.principals).find(
      (r) => r.principal === "agent:1",
    );
    expect(after?.alternates).toBeUndefined();
    const audit = await laid.store.readAudit();
    expect(audit.at(-1)).toMatchObject({ action: "forget", principal: "agent:1" });
    await asAgent.close();
  });
});

describe("stores that cannot be migrated", () => {
  const cases: Record<string, unknown> = {
    "half-migrated (schema 2 with schema-1 fields)": {
      schemaVersion: 2,
      principals: {},
      profiles: { default: { baseUrl: "http://127.0.0.1:1/api", active: "operator" } },
      idempotency: {},
    },
    "from a newer rekey": { schemaVersion: 4, principals: {}, profiles: {} },
    "schema 1 with a corrupt profile": { schemaVersion: 1, profiles: { default: { baseUrl: 7 } } },
  };
  for (const [label, data] of Object.entries(cases)) {
    it(`refuses a store ${label}: STORE_CORRUPT, never read as empty, never overwritten`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "rekey-migrate-bad-"));
      try {
        const text = `${JSON.stringify({ version: 4, data }, null, 2)}\n`;
        await writeFile(join(dir, "credentials.json"), text, { mode: 0o600 });
        const store = createFileStore({ dir });
        const error = await store.read().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(isRekeyError(error, "STORE_CORRUPT")).toBe(true);
        const rekey = createRekey({
          store,
          surface: "library",
          baseUrl: "http://127.0.0.1:9/api",
          env: {},
        });
        await expect(rekey.status()).rejects.toMatchObject({ code: "STORE_CORRUPT" });
        await expect(store.compareAndSet(4, sampleStoreData("over"))).rejects.toMatchObject({
          code: "STORE_CORRUPT",
        });
        await store.close();
        expect(await readFile(join(dir, "credentials.json"), "utf8")).toBe(text);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("merging two profiles' copies of one principal", () => {
  const url = "http://127.0.0.1:9/ai-agents/api";
  const rotation = (oldFingerprint: string, newFingerprint: string, rotatedAt: string) => ({
    requestId: `r-${newFingerprint}`,
    oldFingerprint,
    newFingerprint,
    rotatedAt,
    cooldownUntil: new Date(Date.parse(rotatedAt) + 30 * 60_000).toISOString(),
    verified: true,
    surface: "cli",
  });
  const copy = (fp: string, savedAt: string, extra: Record<string, unknown> = {}) => ({
    key: `lf_${fp}_key_material_0123456789`,
    fingerprint: `fp:${fp}`,
    savedAt,
    source: "rotate",
    ...extra,
  });
  /** Profile op (operator 1, agent 5) and an agent-only profile ag holding agent 5 too. */
  const store = (opAgent: object, agAgent: object) => ({
    schemaVersion: 1,
    profiles: {
      op: {
        baseUrl: url,
        active: "operator",
        operator: copy("0000000000aa", "2026-12-01T09:00:00.000Z", { operatorId: 1 }),
        agents: { "5": opAgent },
        intents: {},
        idempotency: {},
      },
      ag: {
        baseUrl: url,
        active: "agent:5",
        agents: { "5": agAgent },
        intents: {},
        idempotency: {},
      },
    },
  });
  const agentRecord = (data: ReturnType<typeof migrateStoreData>) =>
    Object.values(data.principals).find((record) => record.principal === "agent:5");

  it("keeps the operator link, the name and the last rotation whichever copy is current", () => {
    // op created and rotated agent 5 (key A); the agent then rotated itself from ag (key B).
    const data = migrateStoreData(
      store(
        copy("00000000000a", "2026-12-01T10:00:00.000Z", {
          name: "worker",
          lastRotation: rotation("fp:000000000000", "fp:00000000000a", "2026-12-01T10:00:00.000Z"),
        }),
        copy("00000000000b", "2026-12-01T11:00:00.000Z", {
          lastRotation: rotation("fp:00000000000a", "fp:00000000000b", "2026-12-01T11:00:00.000Z"),
        }),
      ),
    );
    expect(agentRecord(data)).toMatchObject({
      fingerprint: "fp:00000000000b",
      operatorId: 1,
      name: "worker",
      lastRotation: { newFingerprint: "fp:00000000000b" },
      alternates: [expect.objectContaining({ fingerprint: "fp:00000000000a", profile: "op" })],
    });
    expect(data.profiles.op).toMatchObject({ operator: "operator:1" });
  });

  it("keeps as current the key a recorded rotation issued, even when the stale copy was saved later", () => {
    // op rotated agent 5 from key B to key C; ag still holds B, touched later (a re-login).
    const data = migrateStoreData(
      store(
        copy("00000000000c", "2026-12-01T10:00:00.000Z", {
          lastRotation: rotation("fp:00000000000b", "fp:00000000000c", "2026-12-01T10:00:00.000Z"),
        }),
        copy("00000000000b", "2026-12-01T12:00:00.000Z", { source: "login" }),
      ),
    );
    expect(agentRecord(data)).toMatchObject({
      fingerprint: "fp:00000000000c",
      operatorId: 1,
      alternates: [expect.objectContaining({ fingerprint: "fp:00000000000b", profile: "ag" })],
    });
  });
});

describe("the schema-1 backup", () => {
  it("never takes another file of its name for the backup: the original goes beside it", async () => {
    const laid = await lay("idempotency");
    const unrelated = '{"restored":"by someone"}\n';
    await writeFile(join(laid.dir, "credentials.schema-1.json"), unrelated, { mode: 0o600 });
    await laid.store.read();
    expect(await readFile(join(laid.dir, "credentials.schema-1.json"), "utf8")).toBe(unrelated);
    const backups = (await readdir(laid.dir)).filter((name) =>
      /^credentials\.schema-1\.[0-9a-f]{8}\.json$/.test(name),
    );
    expect(backups).toHaveLength(1);
    expect(await openBackup(laid.dir, backups[0] as string)).toBe(laid.original);
  });
});

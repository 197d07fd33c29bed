import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { installBuiltCli, RAW_SECRET, runBinary } from "./cli-harness.test-helper.js";
import { registerDocument, rotationDocument, statusDocument } from "./json-schemas.test-helper.js";

const postgresUrl = inject("postgresUrl");

// The built binary, installed alone, on a store in PostgreSQL: two "hosts" (separate HOME
// directories, nothing shared on disk) share one store through the database.
describe.skipIf(postgresUrl === "")("the built rekey binary on a PostgreSQL store", () => {
  const schema = `rekey_cli_${randomBytes(6).toString("hex")}`;
  let sandbox: RunningSandbox;
  let dir: string;
  let bin: string;
  const hosts: Record<"a" | "b", Record<string, string>> = { a: {}, b: {} };
  const outputs: string[] = [];
  const rekey = async (host: "a" | "b", args: string[]) => {
    const result = await runBinary(args, { env: hosts[host], bin });
    outputs.push(result.stdout, result.stderr);
    return result;
  };

  beforeAll(async () => {
    // The first rotation is answered 6 s late (committed at once): long enough for a second
    // host to start (a cold process and a PostgreSQL connection, seconds on a loaded 2-core
    // machine) and find it in flight, rather than after it, in its cooldown.
    sandbox = await startSandbox({
      port: 0,
      faults: [{ action: "regenerate_operator_key", nth: 1, kind: "delay", delayMs: 6000 }],
    });
    dir = await mkdtemp(join(tmpdir(), "rekey-cli-pg-"));
    bin = await installBuiltCli(dir, { withPg: true });
    // The store URL goes in the environment, never on the command line.
    const store = `${postgresUrl}?schema=${schema}`;
    for (const host of ["a", "b"] as const) {
      await mkdir(join(dir, host));
      hosts[host] = {
        REKEY_STORE: store,
        REKEY_API_URL: sandbox.url,
        HOME: join(dir, host),
        ...TEST_MASTER_KEY_ENV,
      };
    }
  });
  afterAll(async () => {
    await sandbox?.close();
    await rm(dir, { recursive: true, force: true });
    await dropPostgresSchema(postgresUrl, schema);
  });

  it("registers on one host and shows the key on another, writing no credentials to disk", async () => {
    const recovery = join(dir, "recovery.txt");
    const registered = await rekey("a", ["register", "--recovery-code-file", recovery, "--json"]);
    expect(registered.code).toBe(0);
    const { fingerprint } = registerDocument.parse(JSON.parse(registered.stdout));
    const status = statusDocument.parse(
      JSON.parse((await rekey("b", ["status", "--json"])).stdout),
    );
    expect(status.fingerprint).toBe(fingerprint);
    expect(status.store).toEqual({
      kind: "postgres",
      location: expect.stringMatching(
        new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:\\d+/postgres\\?schema=${schema}$`),
      ),
    });
    expect(status.store_health.ok).toBe(true);
    for (const host of ["a", "b"]) expect(existsSync(join(dir, host, ".config"))).toBe(false);
  });

  it("two hosts rotating at once make one upstream rotation and agree on the new key", async () => {
    const before = sandbox.stats().rotations;
    const first = rekey("a", ["rotate", "--yes", "--json"]);
    while ((sandbox.stats().calls.regenerate_operator_key ?? 0) === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Host a's rotation is in flight: host b starts its own, and joins a's.
    const [second, firstDone] = await Promise.all([
      rekey("b", ["rotate", "--yes", "--json"]),
      first,
    ]);
    const results = [firstDone, second];
    expect(results.map((run) => run.code)).toEqual([0, 0]);
    const documents = results.map((run) => rotationDocument.parse(JSON.parse(run.stdout)));
    expect(sandbox.stats().rotations - before).toBe(1);
    expect(documents[0]?.fingerprint).toBe(documents[1]?.fingerprint);
    expect(documents.map((document) => document.shared)).toEqual([false, true]);
    const status = statusDocument.parse(
      JSON.parse((await rekey("a", ["status", "--json"])).stdout),
    );
    expect(status.fingerprint).toBe(documents[0]?.fingerprint);
    for (const text of outputs) expect(text).not.toMatch(RAW_SECRET);
  });

  it("delivers an agent's key from a file store into its own PostgreSQL store (a store target), which its host reads", async () => {
    const agentSchema = `${schema}_agent`;
    const agentStore = `${postgresUrl}?schema=${agentSchema}`;
    // The operator's own host: a file store; the agent's host: only its PostgreSQL store.
    // The delivering process seals into the agent's store, so both hosts hold its master key.
    const operatorEnv = {
      REKEY_HOME: join(dir, "operator-home"),
      REKEY_API_URL: sandbox.url,
      HOME: dir,
      ...TEST_MASTER_KEY_ENV,
    };
    const agentEnv = { REKEY_STORE: agentStore, HOME: join(dir, "b"), ...TEST_MASTER_KEY_ENV };
    try {
      const registered = await runBinary(
        ["register", "--recovery-code-file", join(dir, "op-recovery.txt")],
        { env: operatorEnv, bin },
      );
      expect(registered.code, registered.stderr).toBe(0);
      const created = await runBinary(["agents", "create", "worker", "--json"], {
        env: operatorEnv,
        bin,
      });
      const agentId = String((JSON.parse(created.stdout) as { agent_id: number }).agent_id);
      const added = await runBinary(["deliver", "add", "--agent", agentId, "store", agentStore], {
        env: operatorEnv,
        bin,
      });
      expect(added.code, added.stderr).toBe(0);
      const rotated = await runBinary(
        ["rotate", "--agent", agentId, "--yes", "--force", "--json"],
        { env: operatorEnv, bin },
      );
      expect(rotated.code, rotated.stderr).toBe(0);
      const document = rotationDocument.parse(JSON.parse(rotated.stdout));
      expect(document.deliveries).toEqual([
        expect.objectContaining({ target: "store-1", status: "delivered" }),
      ]);
      const onAgentHost = statusDocument.parse(
        JSON.parse((await runBinary(["status", "--json"], { env: agentEnv, bin })).stdout),
      );
      expect(onAgentHost).toMatchObject({
        label: `agent ${agentId}`,
        fingerprint: document.fingerprint,
      });
      outputs.push(added.stdout, added.stderr, rotated.stdout, rotated.stderr);
    } finally {
      await dropPostgresSchema(postgresUrl, agentSchema);
    }
  });
});

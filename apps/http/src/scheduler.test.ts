import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createRekey, setRotationPolicy } from "@rekey/core";
import { createPostgresStore } from "@rekey/store-postgres";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { type Faucet, makeToken, startFaucet } from "./harness.test-helper.js";

const appDir = fileURLToPath(new URL("..", import.meta.url));
const binPath = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
const TOKENS = JSON.stringify([makeToken("monitor", ["status"]).config]);
const postgresUrl = inject("postgresUrl");

interface Replica {
  url: string;
  child: ChildProcess;
  exit: Promise<number | null>;
  stderr(): string;
}

const replicas: Replica[] = [];
let faucet: Faucet | undefined;
afterEach(async () => {
  for (const replica of replicas.splice(0)) {
    if (replica.child.exitCode === null && replica.child.signalCode === null) {
      replica.child.kill("SIGTERM");
      await replica.exit;
    }
  }
  await faucet?.close();
  faucet = undefined;
});

/** Starts the built rekey-http with `--scheduler` ticking every second. */
async function startReplica(storeUrl: string, home: string): Promise<Replica> {
  const child = spawn(
    process.execPath,
    [binPath, "--port", "0", "--scheduler", "--scheduler-interval", "1"],
    {
      cwd: appDir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: home,
        REKEY_STORE: storeUrl,
        REKEY_HTTP_TOKENS: TOKENS,
        ...TEST_MASTER_KEY_ENV,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL line; stderr: ${stderr}`)), 10_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      const newline = stdout.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, newline));
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${stderr}`));
    });
  });
  const replica = { url, child, exit, stderr: () => stderr };
  replicas.push(replica);
  return replica;
}

async function isLeader(replica: Replica): Promise<boolean> {
  const text = await (await fetch(`${replica.url}/metrics`)).text();
  return /^rekey_scheduler_leader 1$/m.test(text);
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(postgresUrl === "")(
  "rekey-http --scheduler, three replicas on one PostgreSQL store",
  () => {
    const schema = `rekey_sched_${randomBytes(6).toString("hex")}`;
    const storeUrl = `${postgresUrl}?schema=${schema}`;
    afterAll(() => dropPostgresSchema(postgresUrl, schema));

    it("exactly one replica runs each due rotation, and a killed leader is replaced", async () => {
      faucet = await startFaucet({ testClock: false });
      const sandbox = faucet.sandbox;
      const agentRotations = () => sandbox.stats().rotationsByAction.regenerate_agent_key ?? 0;
      const store = createPostgresStore({ url: storeUrl, env: TEST_MASTER_KEY_ENV });
      // Keys stored two hours ago (the engine's clock says so), under a one-hour max-age: due.
      const twoHoursAgo = { now: () => Date.now() - 2 * 3_600_000 };
      const setup = createRekey({
        store,
        surface: "library",
        baseUrl: sandbox.url,
        env: {},
        clock: twoHoursAgo,
      });
      await setup.register({ name: "fleet" });
      for (const name of ["a", "b", "c"]) await setup.createAgent({ name });
      const scope = { store, profileName: "default", baseUrl: sandbox.url, clock: twoHoursAgo };
      await setRotationPolicy(scope, { kind: "all-agents" }, { maxAge: "1h" });

      const fleet = [
        await startReplica(storeUrl, faucet.dir),
        await startReplica(storeUrl, faucet.dir),
        await startReplica(storeUrl, faucet.dir),
      ];
      await waitFor(() => agentRotations() === 3, "three scheduled rotations");
      // A few more ticks of every replica: nothing is rotated twice.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(agentRotations()).toBe(3);
      const leaders = await Promise.all(fleet.map(isLeader));
      expect(leaders.filter(Boolean)).toHaveLength(1);
      const leader = fleet[leaders.indexOf(true)] as Replica;

      leader.child.kill("SIGKILL");
      await leader.exit;
      const rest = fleet.filter((replica) => replica !== leader);
      // New due work after the leader died: a fourth agent whose key is two hours old.
      await setup.createAgent({ name: "d" });
      await setRotationPolicy(scope, { kind: "agent", agentId: 4 }, { maxAge: "1h" });
      await waitFor(() => agentRotations() === 4, "the fourth agent's rotation by a new leader");
      await waitFor(
        async () => (await Promise.all(rest.map(isLeader))).filter(Boolean).length === 1,
        "one new leader",
      );
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(agentRotations()).toBe(4);
      const history = (await setup.history()).filter((entry) => entry.action === "rotate");
      expect(history.map((entry) => entry.principal).sort()).toEqual([
        "agent:1",
        "agent:2",
        "agent:3",
        "agent:4",
      ]);
      for (const replica of fleet) expect(replica.stderr()).not.toMatch(/lfr?_[A-Za-z0-9_-]{20,}/);
      await setup.close();
      await store.close();
    }, 60_000);
  },
);

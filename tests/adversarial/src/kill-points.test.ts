import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CredentialStore,
  fingerprint,
  KILL_AT_ENV,
  KILL_POINTS,
  type KillPoint,
  openCredentialStore,
} from "@rekey/core";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { afterAll, describe, expect, inject, it } from "vitest";
import { expectHandled, runCli, startRecorded } from "./built-cli.js";
import { HTTP_TOKEN, startHttp } from "./built-http.js";
import { ageLocks, checkInvariants, sandboxCommits } from "./invariants.js";
import { expectNoRawKeyRecorded } from "./transcript.js";

/**
 * Issue 11's proof: SIGKILL at every named kill point (`REKEY_TEST_KILL_AT`, the list in
 * `@rekey/core`'s KILL_POINTS) in a real child process (the built CLI, the built rekey-http),
 * on the file store and PostgreSQL, with and without the faucet's request_id; then the next
 * process, and the invariants: a working key or a durable KEY_LOST record (never silent),
 * every committed rotation audited, the audit chain whole.
 */

/** How a point is reached: which command, after which earlier kill. */
type Scenario =
  /** `rekey rotate` killed at the point. */
  | { kind: "rotate" }
  /** `rekey rotate` killed at `first`, then the resolving process killed at the point. */
  | { kind: "resolve"; first: KillPoint; requestId?: boolean }
  /** `rekey recover` killed at the point. */
  | { kind: "recover" }
  /** `rekey recover` with another account's recovery code, killed at the point. */
  | { kind: "recover-other" }
  /** `rekey register` killed at the point (a new profile). */
  | { kind: "register" }
  /** A rotation whose store refuses the key (a child with a failing store), killed there. */
  | { kind: "rescue" }
  /** `rekey rotate` with a delivery target (a dotenv file), killed while it delivers. */
  | { kind: "delivery" };

// Exhaustive: a point added to KILL_POINTS without a scenario fails the build.
const SCENARIOS: Record<KillPoint, Scenario> = {
  "rotate.preflighted": { kind: "rotate" },
  "rotate.intent-written": { kind: "rotate" },
  "rotate.upstream-replied": { kind: "rotate" },
  "rotate.key-stored": { kind: "rotate" },
  "rotate.verified": { kind: "rotate" },
  "rotate.audited": { kind: "rotate" },
  "rotate.intent-cleared": { kind: "rotate" },
  "resolve.stored-audited": { kind: "resolve", first: "rotate.key-stored" },
  "resolve.stored-cleared": { kind: "resolve", first: "rotate.key-stored" },
  "resolve.not-rotated-audited": { kind: "resolve", first: "rotate.intent-written" },
  "resolve.replayed": { kind: "resolve", first: "rotate.upstream-replied", requestId: true },
  "resolve.replay-stored": { kind: "resolve", first: "rotate.upstream-replied", requestId: true },
  "resolve.recovered-audited": {
    kind: "resolve",
    first: "rotate.upstream-replied",
    requestId: true,
  },
  "resolve.key-lost-recorded": {
    kind: "resolve",
    first: "rotate.upstream-replied",
    requestId: false,
  },
  "resolve.key-lost-audited": {
    kind: "resolve",
    first: "rotate.upstream-replied",
    requestId: false,
  },
  "recover.upstream-replied": { kind: "recover" },
  "recover.key-stored": { kind: "recover" },
  "recover.audited": { kind: "recover" },
  "recover.other-rescued": { kind: "recover-other" },
  "register.upstream-replied": { kind: "register" },
  "register.key-stored": { kind: "register" },
  "audit.before-append": { kind: "rotate" },
  "audit.appended": { kind: "rotate" },
  // Reached on the file store only (PostgreSQL commits the entry with the write).
  "audit.entry-synced": { kind: "rotate" },
  "rescue.written": { kind: "rescue" },
  "delivery.pending": { kind: "delivery" },
  "delivery.written": { kind: "delivery" },
};

interface Tally {
  runs: number;
  killed: number;
  lost: number;
  silent: number;
  unaudited: number;
  recovered: number;
}

interface Configuration {
  label: string;
  requestIdSupport: boolean;
  env: Record<string, string>;
  storeSpec: string;
  storeDir: string | undefined;
  root: string;
}

const killed = (run: { signal: NodeJS.Signals | null }) => run.signal === "SIGKILL";

async function runPoints(
  configuration: Configuration,
  points: readonly KillPoint[],
): Promise<Tally> {
  const { requestIdSupport, root } = configuration;
  const sandbox: RunningSandbox = await startSandbox({ port: 0, requestIdSupport });
  const rescueDir = join(root, "rescue");
  const env: Record<string, string> = {
    ...configuration.env,
    REKEY_API_URL: sandbox.url,
    REKEY_RESCUE_DIR: rescueDir,
    HOME: root,
  };
  const store: CredentialStore = await openCredentialStore({
    spec: configuration.storeSpec,
    env: configuration.env,
    urlStores: postgresUrlStores,
  });
  const tally: Tally = { runs: 0, killed: 0, lost: 0, silent: 0, unaudited: 0, recovered: 0 };
  const codeFile = join(root, "code.txt");
  const dotenv = join(root, "service.env");
  let added = false;
  try {
    const registered = await runCli(["register", "--recovery-code-file", codeFile, "--json"], {
      env,
    });
    expect(registered.code, registered.stderr).toBe(0);
    const recoveryCode = (await readFile(codeFile, "utf8")).trim();

    for (const [index, point] of points.entries()) {
      const scenario = SCENARIOS[point];
      if (scenario.kind === "rescue") continue;
      if (
        scenario.kind === "resolve" &&
        scenario.requestId !== undefined &&
        scenario.requestId !== requestIdSupport
      )
        continue;
      tally.runs += 1;
      const where = `${configuration.label}: kill at ${point}`;
      const commitsBefore = sandboxCommits(sandbox);
      const auditBefore = (await store.readAudit()).length;
      const killAt = (at: KillPoint) => ({ ...env, [KILL_AT_ENV]: at });
      let profileEnv = env;

      if (scenario.kind === "delivery") {
        // Once: every later rotation of this store delivers to the file too.
        if (!added) {
          // The file must exist (rekey delivers into it, it does not create it).
          await writeFile(dotenv, "LIGHTNING_WALLET_API_KEY=\n", { mode: 0o600 });
          added = true;
          const addedRun = await runCli(
            ["--json", "deliver", "add", "--var", "LIGHTNING_WALLET_API_KEY", "dotenv", dotenv],
            { env },
          );
          expect(addedRun.code, `${where}: deliver add\n${addedRun.stderr}`).toBe(0);
        }
        const rotation = await runCli(["rotate", "--yes", "--force", "--json"], {
          env: killAt(point),
        });
        expect(killed(rotation), `${where}: killed while delivering`).toBe(true);
        tally.killed += 1;
      } else if (scenario.kind === "rotate" || scenario.kind === "resolve") {
        const first = scenario.kind === "rotate" ? point : scenario.first;
        const rotation = await runCli(["rotate", "--yes", "--force", "--json"], {
          env: killAt(first),
        });
        if (killed(rotation)) tally.killed += scenario.kind === "rotate" ? 1 : 0;
        else expectHandled(rotation, `${where}: rotate`, true);
        if (scenario.kind === "resolve") {
          await ageLocks(configuration.storeDir);
          const resolving = await runCli(["status", "--json"], { env: killAt(point) });
          if (killed(resolving)) tally.killed += 1;
          else expectHandled(resolving, `${where}: resolving status`, true);
        }
      } else if (scenario.kind === "recover-other") {
        // Another account (operator 2, a profile of its own in this store) whose recovery
        // code is pasted into this profile: the faucet replaces operator 2's key.
        const otherCodeFile = join(root, `other${index}-code.txt`);
        const other = await runCli(
          ["--profile", `other${index}`, "register", "--recovery-code-file", otherCodeFile],
          { env },
        );
        expect(other.code, `${where}: register the other account\n${other.stderr}`).toBe(0);
        const recovering = await runCli(["recover", "--force", "--yes", "--json"], {
          env: killAt(point),
          stdin: (await readFile(otherCodeFile, "utf8")).trim(),
        });
        expect(killed(recovering), `${where}: recover was killed\n${recovering.stderr}`).toBe(true);
        tally.killed += 1;
      } else if (scenario.kind === "recover") {
        // Forced: the rotations before it leave the operator inside its withdrawal cooldown,
        // where a recovery without --force is refused before it reaches any point.
        const recovering = await runCli(["recover", "--force", "--yes", "--json"], {
          env: killAt(point),
          stdin: recoveryCode,
        });
        expect(killed(recovering), `${where}: recover was killed\n${recovering.stderr}`).toBe(true);
        tally.killed += 1;
      } else {
        // A new profile: the account it creates upstream must stay reachable.
        const profile = `reg${index}`;
        profileEnv = { ...env, REKEY_PROFILE: profile };
        const file = join(root, `${profile}-code.txt`);
        const registering = await runCli(["register", "--recovery-code-file", file, "--json"], {
          env: { ...profileEnv, [KILL_AT_ENV]: point },
        });
        expect(killed(registering), `${where}: register was killed`).toBe(true);
        tally.killed += 1;
        // The recovery code was kept: the way back into the account the faucet created.
        const kept = (await readFile(file, "utf8")).trim();
        expect(kept, `${where}: recovery code kept`).toMatch(/^lfr_/);
        expect((await stat(file)).mode & 0o777).toBe(0o600);
      }

      const check = await checkInvariants({
        where,
        env: profileEnv,
        store,
        sandbox,
        commitsBefore,
        auditBefore,
        storeDir: configuration.storeDir,
      });
      tally.unaudited += check.unaudited;
      tally.recovered += check.recovered;
      // A registration killed before its key is stored has no principal in the store yet to
      // hold a KEY_LOST record: its durable record is the recovery code file asserted above.
      const silent = check.silent && scenario.kind !== "register";
      if (check.lost) {
        tally.lost += 1;
        if (silent) tally.silent += 1;
        const codeOf =
          profileEnv === env
            ? recoveryCode
            : (await readFile(join(root, `reg${index}-code.txt`), "utf8")).trim();
        // Back in with the recovery code, as an operator would.
        const back = await runCli(["recover", "--json"], { env: profileEnv, stdin: codeOf });
        expect(back.code, `${where}: recover after the loss\n${back.stderr}`).toBe(0);
      }
      expect(
        silent,
        `${where}: a silent loss\nexit ${check.status.code}\n${check.status.stdout}\n${check.status.stderr}`,
      ).toBe(false);
      expect(check.unaudited, `${where}: unaudited rotations`).toBe(0);
      if (scenario.kind === "recover-other") {
        // The other account's new key waits in its rescue file; its own profile takes it.
        const files = (await readdir(rescueDir)).filter((name) => name.endsWith(".json"));
        expect(files, `${where}: one rescue file`).toHaveLength(1);
        const imported = await runCli(
          ["--profile", `other${index}`, "rescue", "import", join(rescueDir, files[0] ?? "")],
          { env },
        );
        expect(imported.code, `${where}: rescue import\n${imported.stderr}`).toBe(0);
        const back = await runCli(["--profile", `other${index}`, "status", "--json"], { env });
        expect(JSON.parse(back.stdout), `${where}: the other account works`).toMatchObject({
          identity: { id: 2 },
        });
      }
      if (scenario.kind === "delivery" && !check.lost) {
        // The next process finished the delivery: the file holds the stored key.
        const status = JSON.parse(check.status.stdout) as { fingerprint?: string };
        const delivered = /LIGHTNING_WALLET_API_KEY=(\S+)/.exec(await readFile(dotenv, "utf8"));
        expect(fingerprint(delivered?.[1] ?? ""), `${where}: delivered key`).toBe(
          status.fingerprint,
        );
      }
    }
  } finally {
    await store.close();
    await sandbox.close();
  }
  return tally;
}

/** rekey-http killed at each rotate point while it answers an Idempotency-Key request; retried. */
async function runHttpPoints(configuration: Configuration): Promise<Tally> {
  const { requestIdSupport, root } = configuration;
  const sandbox = await startSandbox({ port: 0, requestIdSupport });
  const env = { ...configuration.env, REKEY_API_URL: sandbox.url, HOME: root };
  const store = await openCredentialStore({ spec: configuration.storeSpec, env: {} });
  const tally: Tally = { runs: 0, killed: 0, lost: 0, silent: 0, unaudited: 0, recovered: 0 };
  const codeFile = join(root, "http-code.txt");
  try {
    const registered = await runCli(["register", "--recovery-code-file", codeFile, "--json"], {
      env,
    });
    expect(registered.code, registered.stderr).toBe(0);
    const recoveryCode = (await readFile(codeFile, "utf8")).trim();
    const rotatePoints = KILL_POINTS.filter((point) => point.startsWith("rotate."));
    for (const [index, point] of rotatePoints.entries()) {
      tally.runs += 1;
      const where = `${configuration.label}: rekey-http killed at ${point}`;
      const commitsBefore = sandboxCommits(sandbox);
      const auditBefore = (await store.readAudit()).length;
      const post = (url: string) =>
        fetch(`${url}/v1/rotate`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${HTTP_TOKEN}`,
            "content-type": "application/json",
            "idempotency-key": `kill-${index}`,
          },
          // Forced (each run rotates inside the last one's cooldown): without the pending
          // record a retry of a forced request rotates a second time.
          body: '{"force":true}',
        }).then(
          async (response) => ({ status: response.status, body: await response.text() }),
          () => undefined,
        );
      const before = sandboxCommits(sandbox);
      const server = await startHttp({ ...env, [KILL_AT_ENV]: point });
      const answer = await post(server.url);
      const ended = await server.ended;
      expect(ended.signal, `${where}: rekey-http was killed (answered ${answer?.status})`).toBe(
        "SIGKILL",
      );
      tally.killed += 1;
      await ageLocks(configuration.storeDir);

      // The retry, same Idempotency-Key and body: the journaled rotation, not a second one.
      const again = await startHttp(env);
      const retried = await post(again.url);
      again.child.kill("SIGTERM");
      await again.ended;
      const check = await checkInvariants({
        where,
        env,
        store,
        sandbox,
        commitsBefore,
        auditBefore,
        storeDir: configuration.storeDir,
      });
      tally.unaudited += check.unaudited;
      tally.recovered += check.recovered;
      if (check.lost) {
        tally.lost += 1;
        if (check.silent) tally.silent += 1;
        const back = await runCli(["recover", "--json"], { env, stdin: recoveryCode });
        expect(back.code, `${where}: recover\n${back.stderr}`).toBe(0);
      } else if (requestIdSupport) {
        expect(retried?.status, `${where}: retry\n${retried?.body}`).toBe(200);
        const body = JSON.parse(retried?.body ?? "{}") as { fingerprint?: string };
        const status = JSON.parse(check.status.stdout) as { fingerprint?: string };
        expect(body.fingerprint, where).toBe(status.fingerprint);
        // One rotation upstream for the request and its retry.
        expect(
          sandboxCommits(sandbox) - before,
          `${where}: rotations upstream`,
        ).toBeLessThanOrEqual(1);
      }
      expect(check.silent, `${where}: a silent loss`).toBe(false);
      expect(check.unaudited, `${where}: unaudited`).toBe(0);
    }
  } finally {
    await store.close();
    await sandbox.close();
  }
  return tally;
}

describe("kill -9 at every named kill point", () => {
  const results: Array<[string, Tally]> = [];
  const roots: string[] = [];
  const pgUrl = inject("postgresUrl");

  async function fileConfiguration(label: string, requestIdSupport: boolean) {
    const root = await mkdtemp(join(tmpdir(), "rekey-kill-points-"));
    roots.push(root);
    const home = join(root, "home");
    return {
      label,
      requestIdSupport,
      env: { REKEY_HOME: home },
      storeSpec: home,
      storeDir: home,
      root,
    } satisfies Configuration;
  }

  afterAll(async () => {
    const columns: Array<keyof Tally> = [
      "runs",
      "killed",
      "lost",
      "silent",
      "unaudited",
      "recovered",
    ];
    console.log(
      [
        "kill points (every named point, real child processes)",
        ["configuration".padEnd(40), ...columns.map((name) => name.padStart(10))].join(""),
        // In a fixed order: the configurations run side by side and finish in any order.
        ...[...results]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([label, tally]) =>
            [label.padEnd(40), ...columns.map((name) => String(tally[name]).padStart(10))].join(""),
          ),
        "asserted: silent = 0, unaudited = 0 and no entry written twice at every point; with request_id the Idempotency-Key retry returns the journaled rotation.",
      ].join("\n"),
    );
    await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
  });

  // The configurations run two at a time (maxConcurrency in vitest.config.ts): each has its own
  // sandbox, store and root, and a run mostly waits on its children. The secret scan below runs
  // after them.
  for (const requestIdSupport of [true, false]) {
    const suffix = requestIdSupport ? "with request_id" : "without request_id";

    it.concurrent(`CLI, file store, ${suffix}`, async () => {
      const configuration = await fileConfiguration(`CLI, file, ${suffix}`, requestIdSupport);
      const tally = await runPoints(configuration, KILL_POINTS);
      results.push([configuration.label, tally]);
      expect(tally.killed).toBeGreaterThan(10);
    });

    it.skipIf(pgUrl === "").concurrent(`CLI, PostgreSQL, ${suffix}`, async () => {
      const root = await mkdtemp(join(tmpdir(), "rekey-kill-points-"));
      roots.push(root);
      const schema = `kill_points_${requestIdSupport ? "rid" : "norid"}`;
      await dropPostgresSchema(pgUrl, schema);
      const url = new URL(pgUrl);
      url.searchParams.set("schema", schema);
      try {
        const configuration: Configuration = {
          label: `CLI, PostgreSQL, ${suffix}`,
          requestIdSupport,
          env: { REKEY_STORE: url.href, ...TEST_MASTER_KEY_ENV },
          storeSpec: url.href,
          storeDir: undefined,
          root,
        };
        const tally = await runPoints(configuration, KILL_POINTS);
        results.push([configuration.label, tally]);
        expect(tally.killed).toBeGreaterThan(10);
      } finally {
        await dropPostgresSchema(pgUrl, schema);
      }
    });

    it.concurrent(`rekey-http, file store, Idempotency-Key retried, ${suffix}`, async () => {
      const configuration = await fileConfiguration(
        `rekey-http, file, ${suffix}`,
        requestIdSupport,
      );
      const tally = await runHttpPoints(configuration);
      results.push([configuration.label, tally]);
      expect(tally.killed).toBeGreaterThan(3);
    });
  }

  it.concurrent("a key the store refused is in a rescue file when the process is killed, and comes back", async () => {
    const root = await mkdtemp(join(tmpdir(), "rekey-kill-points-"));
    roots.push(root);
    const home = join(root, "home");
    const sandbox = await startSandbox({ port: 0, requestIdSupport: false });
    try {
      const env = { REKEY_HOME: home, REKEY_API_URL: sandbox.url, HOME: root };
      const registered = await runCli(
        ["register", "--recovery-code-file", join(root, "code.txt"), "--json"],
        { env },
      );
      expect(registered.code, registered.stderr).toBe(0);
      const script = new URL("./failing-store-rotate.fixture.mjs", import.meta.url).pathname;
      const child = startRecorded(script, [home, sandbox.url], "failing-store rotate", {
        env: { ...env, [KILL_AT_ENV]: "rescue.written", REKEY_STORE_RETRY_MS: "60000" },
      });
      const ended = await child.result;
      expect(ended.signal, ended.stderr).toBe("SIGKILL");
      await ageLocks(home);
      const store = await openCredentialStore({ spec: home, env: {} });
      try {
        const check = await checkInvariants({
          where: "rescue.written",
          env,
          store,
          sandbox,
          commitsBefore: 0,
          auditBefore: 0,
          storeDir: home,
        });
        // Without request_id the faucet cannot replay: the key came back from the rescue file.
        expect(check.lost).toBe(false);
        expect(check.unaudited).toBe(0);
        results.push([
          "rescue file, file, without request_id",
          { runs: 1, killed: 1, lost: 0, silent: 0, unaudited: 0, recovered: check.recovered },
        ]);
      } finally {
        await store.close();
      }
    } finally {
      await sandbox.close();
    }
  });

  it("printed and logged no raw key", () => {
    expectNoRawKeyRecorded();
  });
});

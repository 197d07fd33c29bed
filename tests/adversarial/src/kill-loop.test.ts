import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CredentialStore, openCredentialStore, verifyAuditChain } from "@rekey/core";
import { type FaultSpec, type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { afterAll, describe, expect, inject, it } from "vitest";
import { BUDGET, LONG, SEED } from "./budget.js";
import { expectHandled, runCli, startCli } from "./built-cli.js";
import { HTTP_TOKEN, startHttp } from "./built-http.js";
import { ageLocks, auditedRotations, duplicateAuditEntries, sandboxCommits } from "./invariants.js";
import { expectNoRawKeyRecorded, record } from "./transcript.js";

/**
 * kill -9 at random points of `rekey rotate`, then the next process, and count.
 *
 * ASSERTED: no process that was not killed crashes (each ends with a documented exit code,
 * never INTERNAL); after every kill the store reads, its audit chain verifies; with the
 * faucet's `request_id` no key is ever lost; without it, losses never exceed runs; and (issue
 * 11) no loss is silent (every one comes with KEY_LOST) and every rotation the faucet
 * committed is in the audit log. The kill-point suite (kill-points.test.ts) proves the same at
 * every named point; this loop is the second net, at random instants.
 */

interface Tally {
  runs: number;
  killed: number;
  lost: number;
  silent: number;
  unaudited: number;
  recovered: number;
  recoveryCodeUsed: number;
}

/** A small seeded generator (mulberry32), so that a run can be replayed with its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function killLoop(options: {
  label: string;
  /** What rotates: the built CLI, or `POST /v1/rotate` to a built `rekey-http`. */
  via: "cli" | "http";
  runs: number;
  requestIdSupport: boolean;
  env: Record<string, string>;
  storeSpec: string;
  storeDir: string | undefined;
  root: string;
  random: () => number;
}): Promise<Tally> {
  const { runs, random, env } = options;
  // Every rotation reply waits a random while after the faucet committed it: the window in
  // which a kill leaves a rotation done upstream and not yet stored.
  const faults: FaultSpec[] = Array.from({ length: runs * 3 + 20 }, (_, index) => ({
    action: "regenerate_operator_key",
    nth: index + 1,
    kind: "delay",
    delayMs: Math.floor(random() * 400),
  }));
  const sandbox: RunningSandbox = await startSandbox({
    port: 0,
    requestIdSupport: options.requestIdSupport,
    faults,
  });
  const fullEnv = { ...env, REKEY_API_URL: sandbox.url, HOME: options.root };
  const store: CredentialStore = await openCredentialStore({
    spec: options.storeSpec,
    // The children's master key source too (none on a file store: its own master.key).
    env,
    urlStores: postgresUrlStores,
  });
  const tally: Tally = {
    runs: 0,
    killed: 0,
    lost: 0,
    silent: 0,
    unaudited: 0,
    recovered: 0,
    recoveryCodeUsed: 0,
  };
  const codeFile = join(options.root, `${options.label.replace(/\W+/g, "-")}-code.txt`);
  try {
    const registered = await runCli(["register", "--recovery-code-file", codeFile, "--json"], {
      env: fullEnv,
    });
    expect(registered.code, registered.stderr).toBe(0);
    const recoveryCode = (await readFile(codeFile, "utf8")).trim();
    const commits = () => sandboxCommits(sandbox);

    for (let run = 1; run <= runs; run += 1) {
      tally.runs += 1;
      const commitsBefore = commits();
      const auditBefore = await store.readAudit();
      const where = `${options.label} run ${run} (seed ${SEED})`;

      // 1. A rotation, killed after a random delay (unless it finished first).
      if (options.via === "cli") {
        const rotation = startCli(["rotate", "--yes", "--force", "--json"], { env: fullEnv });
        const killAfterMs = Math.floor(random() * 900);
        const finished = await Promise.race([
          rotation.result,
          sleep(killAfterMs).then(() => undefined),
        ]);
        if (finished === undefined) {
          rotation.child.kill("SIGKILL");
          const ended = await rotation.result;
          if (ended.signal === "SIGKILL") tally.killed += 1;
          else expectHandled(ended, `${where}: rotate`, true);
        } else {
          expectHandled(finished, `${where}: rotate`, true);
        }
      } else {
        // The server is killed while it answers POST /v1/rotate (or after, when it was fast).
        const server = await startHttp(fullEnv);
        const answer = fetch(`${server.url}/v1/rotate`, {
          method: "POST",
          headers: { authorization: `Bearer ${HTTP_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ force: true }),
        }).then(
          async (response) => ({ status: response.status, body: await response.text() }),
          () => undefined,
        );
        const killAfterMs = Math.floor(random() * 900);
        const finished = await Promise.race([answer, sleep(killAfterMs).then(() => undefined)]);
        server.child.kill("SIGKILL");
        await server.ended;
        if (finished === undefined) tally.killed += 1;
        else {
          record(`${where}: rotate reply`, finished.body);
          expect(finished.status, `${where}: rotate reply ${finished.body}`).toBe(200);
        }
      }
      await ageLocks(options.storeDir);

      // 2. The next process: a command that needs the key. It first resolves whatever the
      // killed one left (the engine does that before any use of the key), then uses it.
      const next = await runCli(["agents", "--json"], { env: fullEnv });
      expectHandled(next, `${where}: next process`, true);

      // 3. The store is consistent: it reads, and its audit chain verifies.
      await store.read();
      const auditAfter = await store.readAudit();
      expect(verifyAuditChain(auditAfter).ok, `${where}: audit chain`).toBe(true);
      const newEntries = auditAfter.slice(auditBefore.length);
      tally.recovered += newEntries.filter(
        (entry) => entry.action === "resolve" && entry.outcome === "recovered",
      ).length;

      // 4. Did the stored key survive? UNAUTHORIZED (3) or KEY_LOST (9): it did not.
      if (next.code === 3 || next.code === 9) {
        tally.lost += 1;
        const signalled =
          /KEY_LOST/.test(next.stdout + next.stderr) ||
          newEntries.some((entry) => entry.outcome === "key_lost");
        if (!signalled) tally.silent += 1;
        // Back in with the recovery code, as an operator would.
        const recovered = await runCli(["recover", "--json"], {
          env: fullEnv,
          stdin: recoveryCode,
        });
        expectHandled(recovered, `${where}: recover`, true);
        expect(recovered.code, `${where}: recover\n${recovered.stderr}`).toBe(0);
        tally.recoveryCodeUsed += 1;
      } else {
        expect(next.code, `${where}: next process\n${next.stderr}`).toBe(0);
      }

      // 5. Every rotation the faucet committed is in the audit log (the recovery above, a
      // rotation upstream too, with it).
      const finalAudit = await store.readAudit();
      const committed = commits() - commitsBefore;
      const audited = auditedRotations(finalAudit.slice(auditBefore.length));
      tally.unaudited += Math.max(0, committed - audited);
    }
    const log = await store.readAudit();
    record(`${options.label} audit log`, JSON.stringify(log));
    // Each committed change audited once: never a second entry for it (auditOnce).
    expect(duplicateAuditEntries(log), `${options.label}: audit entries written twice`).toEqual([]);
  } finally {
    await store.close();
    await sandbox.close();
  }
  return tally;
}

function printTable(results: Array<[string, Tally]>): void {
  const columns: Array<[keyof Tally, string]> = [
    ["runs", "runs"],
    ["killed", "killed"],
    ["lost", "keys lost"],
    ["silent", "silent losses"],
    ["unaudited", "unaudited"],
    ["recovered", "recovered"],
    ["recoveryCodeUsed", "recovery code"],
  ];
  const cell = (text: string) => text.padStart(15);
  const header = ["configuration".padEnd(38), ...columns.map(([, title]) => cell(title))].join("");
  // In a fixed order: the configurations run side by side and finish in any order.
  const sorted = [...results].sort(([a], [b]) => a.localeCompare(b));
  const rows = sorted.map(([label, tally]) =>
    [label.padEnd(38), ...columns.map(([name]) => cell(String(tally[name])))].join(""),
  );
  console.log(
    [
      `kill -9 loop (${LONG ? "long" : "bounded"}, seed ${SEED})`,
      header,
      ...rows,
      "asserted: no crash of any process not killed, a consistent store after every kill,",
      "          0 keys lost with request_id, keys lost <= runs without it,",
      "          0 silent losses (no KEY_LOST) and 0 unaudited rotations (issue 11),",
      "          no committed change audited twice.",
      "recovered: rotations the next process recovered; recovery code: losses undone with it.",
    ].join("\n"),
  );
}

describe("kill -9 at random points of a rotation", () => {
  const results: Array<[string, Tally]> = [];
  const roots: string[] = [];
  const pgUrl = inject("postgresUrl");
  const perConfiguration = Math.ceil(BUDGET.kills / (pgUrl === "" ? 2 : 4));
  // Each configuration draws from a generator of its own (the seed plus a number fixed per
  // configuration), so that the configurations can run side by side and a seed still replays
  // each one's kill instants and reply delays.
  const randomFor = (configuration: number) => seededRandom(SEED + configuration);

  /** The loop on a file store of its own, through the CLI or rekey-http; tallied as `label`. */
  async function onFileStore(
    via: "cli" | "http",
    label: string,
    runs: number,
    requestIdSupport: boolean,
    random: () => number,
  ): Promise<void> {
    const root = await mkdtemp(join(tmpdir(), "rekey-adversarial-kill-"));
    roots.push(root);
    const home = join(root, "home");
    const tally = await killLoop({
      label,
      via,
      runs,
      requestIdSupport,
      env: { REKEY_HOME: home },
      storeSpec: home,
      storeDir: home,
      root,
      random,
    });
    results.push([label, tally]);
    expectInvariants(tally, requestIdSupport);
  }

  afterAll(async () => {
    printTable(results);
    await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
  });

  // The configurations run two at a time (maxConcurrency in vitest.config.ts): a run mostly
  // waits (on a child's start, the kill's random instant, the faucet's delayed reply), so two
  // side by side take little more than one on two cores. The secret scan below runs after them.
  for (const [index, requestIdSupport] of [true, false].entries()) {
    const suffix = requestIdSupport ? "with request_id" : "without request_id";

    it.concurrent(`file store, ${suffix}`, () =>
      onFileStore(
        "cli",
        `file store, ${suffix}`,
        perConfiguration,
        requestIdSupport,
        randomFor(index),
      ));

    it.skipIf(pgUrl === "").concurrent(`PostgreSQL store, ${suffix}`, async () => {
      const root = await mkdtemp(join(tmpdir(), "rekey-adversarial-kill-"));
      roots.push(root);
      const schema = `adversarial_kill_${requestIdSupport ? "rid" : "norid"}`;
      await dropPostgresSchema(pgUrl, schema);
      const url = new URL(pgUrl);
      url.searchParams.set("schema", schema);
      try {
        const tally = await killLoop({
          label: `postgres, ${suffix}`,
          via: "cli",
          runs: perConfiguration,
          requestIdSupport,
          // In the environment, as a fleet would set it (a password on argv is refused).
          env: { REKEY_STORE: url.href, ...TEST_MASTER_KEY_ENV },
          storeSpec: url.href,
          storeDir: undefined,
          root,
          random: randomFor(2 + index),
        });
        results.push([`PostgreSQL, ${suffix}`, tally]);
        expectInvariants(tally, requestIdSupport);
      } finally {
        await dropPostgresSchema(pgUrl, schema);
      }
    });
  }

  for (const [index, requestIdSupport] of [true, false].entries()) {
    const suffix = requestIdSupport ? "with request_id" : "without request_id";
    it.concurrent(`rekey-http on the file store, ${suffix}`, () =>
      onFileStore(
        "http",
        `rekey-http, file, ${suffix}`,
        Math.ceil(BUDGET.httpKills / 2),
        requestIdSupport,
        randomFor(4 + index),
      ));
  }

  it("printed and logged no raw key", () => {
    expectNoRawKeyRecorded();
  });
});

function expectInvariants(tally: Tally, requestIdSupport: boolean): void {
  if (requestIdSupport) expect(tally.lost, "keys lost with request_id").toBe(0);
  expect(tally.lost).toBeLessThanOrEqual(tally.runs);
  expect(tally.silent, "silent losses").toBe(0);
  expect(tally.unaudited, "unaudited rotations").toBe(0);
}

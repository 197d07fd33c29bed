import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN_PATH, installBuiltCli, RAW_SECRET, runBinary } from "./cli-harness.test-helper.js";
import {
  errorDocument,
  importDocument,
  registerDocument,
  rotationDocument,
  statusDocument,
} from "./json-schemas.test-helper.js";

// The built binary (dist/, rebuilt by scripts/vitest-build-first.mjs) installed alone in a temp
// directory, run as a child process with pipes: no terminal anywhere, as in CI or a cron job.
describe("the built rekey binary", () => {
  let sandbox: RunningSandbox;
  let dir: string;
  let bin: string;
  let env: Record<string, string>;
  const outputs: string[] = [];
  const rekey = async (
    args: string[],
    options: { stdin?: string; env?: Record<string, string> } = {},
  ) => {
    const result = await runBinary(args, {
      env: { ...env, ...options.env },
      stdin: options.stdin,
      bin,
    });
    outputs.push(result.stdout, result.stderr);
    return result;
  };

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    dir = await mkdtemp(join(tmpdir(), "rekey-bin-test-"));
    bin = await installBuiltCli(dir);
    env = { REKEY_HOME: join(dir, "home"), REKEY_API_URL: sandbox.url, HOME: dir };
  });
  afterAll(async () => {
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("is installed with no other package it could load", async () => {
    // Node looks for packages in every node_modules above the file: only the CLI's own.
    const found: string[] = [];
    for (let at = dirname(bin); at !== dirname(at); at = dirname(at)) {
      if (existsSync(join(at, "node_modules"))) found.push(join(at, "node_modules"));
    }
    expect(found).toEqual([join(dir, "node_modules")]);
    expect(await readdir(join(dir, "node_modules"))).toEqual(["@rekey"]);
    expect(await readdir(join(dir, "node_modules", "@rekey"))).toEqual(["cli"]);
    expect((await readdir(dirname(dirname(bin)))).sort()).toEqual(["dist", "package.json"]);
  });

  it("--version and --help work without a store or a faucet", async () => {
    const version = await runBinary(["--version"], { bin });
    expect(version.code).toBe(0);
    const { version: packageVersion } = JSON.parse(
      await readFile(join(dirname(dirname(bin)), "package.json"), "utf8"),
    ) as { version: string };
    expect(version.stdout).toBe(`${packageVersion}\n`);
    // The bundle answers the same when run directly, without the launcher.
    expect((await runBinary(["-v"], { bin: join(dirname(bin), "cli.cjs") })).stdout).toBe(
      `${packageVersion}\n`,
    );
    const help = await runBinary(["--help"], { bin });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Examples:");
  });

  it("`rekey sandbox --help` gives the faucet URL with the path the sandbox and the READMEs use", async () => {
    const help = await runBinary(["sandbox", "--help"], { bin });
    expect(help.code).toBe(0);
    const urls = [...help.stdout.matchAll(/REKEY_API_URL=(\S+)/g)].map((match) => match[1]);
    expect(urls.length).toBeGreaterThan(0);
    // The URL `rekey sandbox` prints: a profile made with a bare origin refuses it later.
    for (const url of urls) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ai-agents\/api$/);
  });

  it("--help names the schemaVersion that --json documents carry", async () => {
    const listed = await rekey(["--json", "profiles", "list"]);
    expect(listed.code).toBe(0);
    const { schemaVersion } = JSON.parse(listed.stdout) as { schemaVersion: number };
    const help = await runBinary(["--help"], { bin });
    expect(help.stdout).toMatch(/--json\s+print one JSON document \(schemaVersion \d+\)/);
    expect(help.stdout).toContain(`(schemaVersion ${schemaVersion})`);
  });

  it("--version runs the launcher alone; --help evaluates commander but no core, zod or pg", async () => {
    // V8's coverage (NODE_V8_COVERAGE) counts the calls of every function: in the CommonJS bundle
    // each module is a function named for its source path, run on first use.
    const evaluatedModules = async (args: string[]) => {
      const coverage = await mkdtemp(join(dir, "coverage-"));
      const result = await runBinary(args, { bin, env: { NODE_V8_COVERAGE: coverage } });
      expect(result.code).toBe(0);
      const scripts: string[] = [];
      const modules: string[] = [];
      for (const name of await readdir(coverage)) {
        const report = JSON.parse(await readFile(join(coverage, name), "utf8")) as {
          result: Array<{
            url: string;
            functions: Array<{ functionName: string; ranges: Array<{ count: number }> }>;
          }>;
        };
        for (const script of report.result) {
          if (!script.url.startsWith("file:")) continue;
          scripts.push(script.url.slice(script.url.lastIndexOf("/") + 1));
          for (const fn of script.functions) {
            if ((fn.ranges[0]?.count ?? 0) > 0 && /\.[cm]?[jt]s$/.test(fn.functionName)) {
              modules.push(fn.functionName);
            }
          }
        }
      }
      return { scripts, modules };
    };
    const version = await evaluatedModules(["--version"]);
    expect(version.scripts).toEqual(["rekey.cjs"]);
    // ... and loads no node built-in that a CommonJS file printing one line does not.
    const builtinsLoaded = async (script: string, args: string[]) => {
      const report = join(await mkdtemp(join(dir, "builtins-")), "loaded.json");
      const preload = join(dirname(report), "preload.cjs");
      await writeFile(
        preload,
        `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(report)}, JSON.stringify(process.moduleLoadList)));`,
      );
      const result = await runBinary(args, {
        bin: script,
        env: { NODE_OPTIONS: `--require ${preload}` },
      });
      expect(result.code).toBe(0);
      return (JSON.parse(await readFile(report, "utf8")) as string[]).filter((name) =>
        name.startsWith("NativeModule "),
      );
    };
    const printer = join(dir, "print-a-line.cjs");
    await writeFile(printer, 'process.stdout.write("0.0.0\\n");');
    const bare = new Set(await builtinsLoaded(printer, []));
    const forVersion = await builtinsLoaded(bin, ["--version"]);
    expect(forVersion.filter((name) => !bare.has(name))).toEqual([]);

    const help = await evaluatedModules(["--help"]);
    expect(help.scripts.sort()).toEqual(["cli.cjs", "rekey.cjs"]);
    expect(help.modules.some((path) => path.includes("/commander/"))).toBe(true);
    expect(help.modules).toContain("src/program.ts");
    // Bundled core and sandbox appear under their workspace paths.
    const lazyOnly =
      /@rekey\/core|packages\/core|packages\/sandbox|packages\/store-postgres|\/pg\/|\/zod\/|src\/commands\//;
    // Core's duration formatter and cooldown lengths are the exceptions: leaf modules with no
    // imports, which every front end shares (the `@rekey/core/duration` and `/cooldowns` subpaths).
    const shared = /packages\/core\/dist\/(duration|cooldowns)\.js$/;
    expect(help.modules.filter((path) => lazyOnly.test(path) && !shared.test(path))).toEqual([]);
    expect(help.modules.filter((path) => shared.test(path))).toHaveLength(2);
  });

  it("bundles core, the sandbox and zod (English messages only), and leaves pg outside", async () => {
    const meta = JSON.parse(await readFile(join(BIN_PATH, "..", "meta.json"), "utf8")) as {
      outputs: Record<string, { inputs: Record<string, unknown> }>;
    };
    const bundled = Object.keys(meta.outputs["dist/cli.cjs"]?.inputs ?? {});
    const workspace = ["packages/core/", "packages/sandbox/", "packages/store-postgres/"];
    for (const inside of [...workspace, "/zod/", "/commander/"]) {
      expect(bundled.some((path) => path.includes(inside))).toBe(true);
    }
    // Requests go through node:http; zod's messages are the English ones only.
    expect(
      bundled.filter((path) => /\/undici\/|\/zod\/v4\/locales\/(?!en\.js|index\.js)/.test(path)),
    ).toEqual([]);
    // pg is an optional peer, installed beside the CLI only for a postgres:// store.
    expect(bundled.some((path) => path.includes("/pg/lib/"))).toBe(false);
  });

  it("register, status, rotate end to end, with exit codes and no raw key in any output", async () => {
    const file = join(dir, "recovery.txt");
    const registered = await rekey(["register", "--recovery-code-file", file, "--json"]);
    expect(registered.code).toBe(0);
    const { fingerprint } = registerDocument.parse(JSON.parse(registered.stdout));

    const status = await rekey(["status", "--json"]);
    expect(statusDocument.parse(JSON.parse(status.stdout)).fingerprint).toBe(fingerprint);

    const unconfirmed = await rekey(["rotate"]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/^error: .*\n {2}hint: .*pass --yes/m);

    const rotated = await rekey(["rotate", "--yes", "--json"]);
    expect(rotated.code).toBe(0);
    expect(rotationDocument.parse(JSON.parse(rotated.stdout)).old_fingerprint).toBe(fingerprint);

    const refused = await rekey(["withdraw", "--amount", "10", "--json"]);
    expect(refused.code).toBe(5);
    expect(errorDocument.parse(JSON.parse(refused.stderr)).error.code).toBe("COOLDOWN_ACTIVE");

    const history = await rekey(["history", "--verify"]);
    expect(history.code).toBe(0);
    expect(history.stdout).toContain("hash chain intact");
    expect(history.stdout).toContain(`${fingerprint} (new)`);

    for (const text of outputs) expect(text).not.toMatch(RAW_SECRET);
  });

  it("lines up a table whose cells hold CJK and emoji (string-width's lazy segmenter, as bundled)", async () => {
    // A faucet of its own, so the agent ids here are 1 and 2 and no other test sees them.
    const faucet = await startSandbox({ port: 0 });
    try {
      const own = { REKEY_HOME: join(dir, "home-wide-names"), REKEY_API_URL: faucet.url };
      const register = ["register", "--recovery-code-file", join(dir, "rc-wide.txt")];
      expect((await rekey(register, { env: own })).code).toBe(0);
      expect((await rekey(["agents", "create", "日本 🦊"], { env: own })).code).toBe(0);
      expect((await rekey(["agents", "create", "plain"], { env: own })).code).toBe(0);
      const listed = await rekey(["agents"], { env: own });
      expect(listed.code).toBe(0);
      const rows = listed.stdout.split("\n");
      // "日本 🦊" is 7 columns on a terminal (2 + 2 + 1 + 2), as wide as "plain" padded.
      expect(rows[0]).toMatch(/^id {2}name {5}balance/);
      expect(rows[2]).toMatch(/^1 {3}日本 🦊 {2}0 sats/);
      expect(rows[3]).toMatch(/^2 {3}plain {4}0 sats/);
    } finally {
      await faucet.close();
    }
  });

  it("refuses a database password in --store (exit 2, hint), but takes REKEY_STORE", async () => {
    const url = "postgres://rekey:s3cret@127.0.0.1:1/rekey";
    const refused = await rekey(["--store", url, "status"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("password on the command line");
    expect(refused.stderr).toMatch(/PGPASSWORD/);
    expect(refused.stderr).not.toContain("s3cret");
    // From the environment it is taken: the binary goes on to open the store, which fails for
    // another reason (nothing listens on port 1: exit 7; or, installed alone, pg is missing).
    const fromEnv = await rekey(["status"], { env: { REKEY_STORE: url } });
    expect(fromEnv.stderr).not.toContain("password on the command line");
    expect(fromEnv.stderr).toMatch(/ECONNREFUSED|install.*\bpg\b/);
    expect(fromEnv.code).not.toBe(0);
    expect(fromEnv.stderr).not.toContain("s3cret");
  });

  it("a profile's keys asked for under another spelling of its faucet URL: the hint names the profile's URL", async () => {
    const own = { REKEY_HOME: join(dir, "home-other-url") };
    const register = ["register", "--recovery-code-file", join(dir, "rc-other-url.txt")];
    expect((await rekey(register, { env: own })).code).toBe(0);
    // The sandbox answers on its origin too, but the profile's keys are for .../ai-agents/api.
    const origin = new URL(sandbox.url).origin;
    const refused = await rekey(["status"], { env: { ...own, REKEY_API_URL: origin } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("CONFIG_INVALID");
    expect(refused.stderr).toMatch(/^ {2}hint: .*/m);
    const hint = /^ {2}hint: (.*)$/m.exec(refused.stderr)?.[1] ?? "";
    expect(hint).toContain(`Set REKEY_API_URL=${sandbox.url} (or unset it)`);
    expect(hint).not.toMatch(/^Use another profile/);
  });

  it("login refuses garbage piped on stdin with exit 2", async () => {
    const result = await rekey(["login"], { stdin: "not a key\nsecond line\n" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("INVALID_INPUT");
  });

  it("imports a real-format lightning-wallet credentials file, verifying each key", async () => {
    // Real keys to import: an operator registered and an agent created in a scratch profile,
    // revealed once and written in the lightning-wallet format.
    const scratch = { REKEY_HOME: join(dir, "scratch") };
    await rekey(["register", "--recovery-code-file", join(dir, "scratch-recovery.txt")], {
      env: scratch,
    });
    await rekey(["agents", "create", "imported-agent"], { env: scratch });
    const operator = rotationDocument.parse(
      JSON.parse((await rekey(["rotate", "--yes", "--reveal", "--json"], { env: scratch })).stdout),
    );
    const agent = rotationDocument.parse(
      JSON.parse(
        (await rekey(["rotate", "--agent", "1", "--yes", "--reveal", "--json"], { env: scratch }))
          .stdout,
      ),
    );
    const walletHome = join(dir, "lightning-wallet");
    await mkdir(walletHome, { recursive: true });
    const savedAt = new Date().toISOString();
    await writeFile(
      join(walletHome, "credentials.json"),
      JSON.stringify({
        version: 1,
        active: "operator",
        operator: {
          api_key: operator.api_key,
          id: 1,
          name: "AI Agent Operator",
          recovery_code: `lfr_${"R".repeat(43)}`,
          saved_at: savedAt,
        },
        agent: { api_key: agent.api_key, id: 1, name: "imported-agent", saved_at: savedAt },
      }),
      { mode: 0o600 },
    );
    outputs.length = 0;

    const imported = await rekey(
      ["import", "lightning-wallet", "--profile", "imported", "--json"],
      {
        env: { LIGHTNING_WALLET_HOME: walletHome },
      },
    );
    expect(imported.code).toBe(0);
    const document = importDocument.parse(JSON.parse(imported.stdout));
    expect(document.recovery_code_skipped).toBe(true);
    expect(document.results).toEqual([
      expect.objectContaining({
        entry: "operator",
        result: "imported",
        fingerprint: operator.fingerprint,
      }),
      expect.objectContaining({
        entry: "agent",
        result: "imported",
        fingerprint: agent.fingerprint,
      }),
    ]);
    const status = await rekey(["status", "--profile", "imported", "--json"]);
    expect(statusDocument.parse(JSON.parse(status.stdout)).fingerprint).toBe(operator.fingerprint);
    for (const text of outputs) expect(text).not.toMatch(RAW_SECRET);

    const garbage = join(dir, "garbage.json");
    await writeFile(garbage, "{ not json");
    const bad = await rekey(["import", "lightning-wallet", "--file", garbage]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("is not valid JSON");
    const missing = await rekey(["import", "lightning-wallet", "--file", join(dir, "nope.json")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("ENOENT");
  });

  it("doctor reports a crashed write's temp file (a live key); doctor --repair removes it", async () => {
    const home = join(dir, "leftover");
    const registered = await rekey(
      ["register", "--recovery-code-file", join(dir, "leftover-code.txt"), "--json"],
      { env: { REKEY_HOME: home } },
    );
    expect(registered.code).toBe(0);
    const leftover = join(home, ".credentials.json.0123abcd.tmp");
    await writeFile(leftover, await readFile(join(home, "credentials.json")), { mode: 0o600 });
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(leftover, hourAgo, hourAgo);
    const doctor = await rekey(["doctor"], { env: { REKEY_HOME: home } });
    expect(doctor.code).toBe(11);
    expect(doctor.stdout).toContain("leftover temp file");
    const repaired = await rekey(["doctor", "--repair"], { env: { REKEY_HOME: home } });
    expect(repaired.code).toBe(0);
    expect(await readdir(home)).not.toContain(".credentials.json.0123abcd.tmp");
  });

  it("a corrupt store exits 7; an unwritable store refuses register before the faucet", async () => {
    const corruptHome = join(dir, "corrupt");
    await mkdir(corruptHome, { recursive: true, mode: 0o700 });
    await writeFile(join(corruptHome, "credentials.json"), "\u0000\u0001garbage", { mode: 0o600 });
    const corrupt = await rekey(["status", "--json"], { env: { REKEY_HOME: corruptHome } });
    expect(corrupt.code).toBe(7);
    expect(errorDocument.parse(JSON.parse(corrupt.stderr)).error.code).toBe("STORE_CORRUPT");

    const notADirectory = join(dir, "plain-file");
    await writeFile(notADirectory, "x");
    const registersBefore = sandbox.stats().calls.register ?? 0;
    const unusable = await rekey(
      ["register", "--recovery-code-file", join(dir, "never-written.txt")],
      { env: { REKEY_HOME: join(notADirectory, "home") } },
    );
    expect(unusable.code).toBe(7);
    expect(unusable.stderr).toContain("STORE_UNAVAILABLE");
    expect(sandbox.stats().calls.register ?? 0).toBe(registersBefore);
  });

  it("the demo runs every step to the end and says each thing once", {
    timeout: 60_000,
  }, async () => {
    const demo = await runBinary([], { bin: join(dirname(bin), "demo.cjs") });
    expect(demo.stderr).toBe("");
    expect(demo.code).toBe(0);
    expect(demo.stdout).toContain("demo finished: every step behaved as expected.");
    expect(demo.stdout.match(/mode 0600/g)).toHaveLength(1);
    expect(demo.stdout).not.toMatch(RAW_SECRET);
  });

  it("rekey sandbox prints its URL and stops cleanly on SIGINT", async () => {
    const child = spawn(process.execPath, [bin, "sandbox", "--port", "0"], {
      env: { PATH: process.env.PATH, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding("utf8").on("data", (text: string) => {
        stdout += text;
        const match = /listening at (http:\/\/\S+)/.exec(stdout);
        if (match?.[1]) resolve(match[1]);
      });
      child.once("exit", () => reject(new Error(`sandbox exited early: ${stdout}`)));
    });
    const reply = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ action: "whoami", api_key: `lf_${"x".repeat(43)}` }),
    });
    expect(((await reply.json()) as { success: boolean }).success).toBe(false);
    const exitCode = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    expect(await exitCode).toBe(0);
    // Without --data its keys live in memory: say so, since a restart strands stored keys.
    expect(stderr).toContain("a restart forgets every key");
  });
  it("rekey run passes SIGTERM to its command and exits with the command's code", async () => {
    const home = join(dir, "run-home");
    const registered = await rekey(
      ["register", "--recovery-code-file", join(dir, "run-recovery.txt")],
      {
        env: { REKEY_HOME: home },
      },
    );
    expect(registered.code).toBe(0);
    const script =
      'process.on("SIGTERM",()=>process.exit(process.env.LIGHTNING_WALLET_API_KEY.startsWith("lf_")?42:1));console.log("up");setInterval(()=>{},1000)';
    const child = spawn(process.execPath, [bin, "run", "--", process.execPath, "-e", script], {
      env: { ...env, REKEY_HOME: home, PATH: process.env.PATH ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const deadline = Date.now() + 10_000;
    while (!output.includes("up") && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(output).toContain("up");
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) =>
      child.on("close", (exitCode) => resolve(exitCode)),
    );
    expect(code).toBe(42);
    expect(output).not.toMatch(RAW_SECRET);
  });
});

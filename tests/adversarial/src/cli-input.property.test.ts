import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningSandbox, startSandbox } from "@rekey/sandbox";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUDGET, SEED } from "./budget.js";
import { expectHandled, runCli, startCli } from "./built-cli.js";
import { expectNoRawKeyRecorded } from "./transcript.js";

// Words the CLI knows, so that generated command lines reach deep into commands rather than
// stopping at "unknown command". `sandbox` (runs until Ctrl-C) and `--reveal` (prints a key
// on purpose) are left out.
const COMMANDS = [
  "register",
  "login",
  "status",
  "rotate",
  "agents",
  "list",
  "create",
  "history",
  "recover",
  "doctor",
  "import",
  "lightning-wallet",
  "withdraw",
  "help",
];
const FLAGS = [
  "--json",
  "--quiet",
  "-q",
  "--verbose",
  "-v",
  "--yes",
  "-y",
  "--dry-run",
  "--force",
  "--all-agents",
  "--repair",
  "--verify",
  "--help",
  "--",
];
const VALUED = [
  "--profile",
  "--store",
  "--url",
  "--agent",
  "--amount",
  "--invoice",
  "--concurrency",
  "--recovery-code-file",
  "--name",
  "--budget",
  "--limit",
];
const value = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.integer().map(String),
  fc.constantFrom(
    "0",
    "-1",
    "1e309",
    "NaN",
    "99999999999999999999",
    "memory",
    "file:sub",
    "postgres://127.0.0.1:1/rekey",
    "postgres://rekey:pw@127.0.0.1:1/rekey",
    "postgres://127.0.0.1:1/rekey?sslrootcert=/missing",
    "http://example.com/",
    "ftp://127.0.0.1/",
    "../..",
    "/dev/null",
    " ",
    "lnbc1",
  ),
);
const word = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...COMMANDS).map((w) => [w]) },
  { weight: 3, arbitrary: fc.constantFrom(...FLAGS).map((w) => [w]) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...VALUED), value).map(([f, v]) => [f, v]) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((w) => [w]) },
);
const commandLine = fc
  .array(word, { minLength: 1, maxLength: 6 })
  .map((words) => words.flat())
  .filter((args) => !args.some((arg) => /sandbox|--reveal/.test(arg)));
const stdin = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 64 }),
  // A well-formed key the faucet does not know.
  fc.stringMatching(/^lf_[A-Za-z0-9_-]{43}$/),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
);

describe("the built CLI under generated command lines and stdin", () => {
  let sandbox: RunningSandbox;
  let root: string;
  let template: string;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    root = await mkdtemp(join(tmpdir(), "rekey-adversarial-cli-"));
    template = join(root, "template");
    const registered = await runCli(
      ["register", "--recovery-code-file", join(root, "code.txt"), "--json"],
      { env: { REKEY_HOME: template, REKEY_API_URL: sandbox.url, HOME: root } },
    );
    expect(registered.code).toBe(0);
  });
  afterAll(async () => {
    await sandbox.close();
    await rm(root, { recursive: true, force: true });
  });

  it("never crashes, answers with a documented exit code and a closed-set error", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(commandLine, stdin, async (args, input) => {
        run += 1;
        const home = join(root, `run-${run}`);
        await cp(template, home, { recursive: true });
        const { child, result } = startCli(args, {
          env: { REKEY_HOME: home, REKEY_API_URL: sandbox.url, HOME: root },
          stdin: input,
          cwd: home,
        });
        const hung = setTimeout(() => child.kill("SIGKILL"), 60_000);
        const outcome = await result.finally(() => clearTimeout(hung));
        expectHandled(
          outcome,
          `rekey ${JSON.stringify(args)} <<< ${JSON.stringify(input)}`,
          args.includes("--json"),
        );
        await rm(home, { recursive: true, force: true });
      }),
      { numRuns: BUDGET.cliRuns, seed: SEED, endOnFailure: true },
    );
  });

  it("printed no raw key anywhere", () => {
    expectNoRawKeyRecorded();
  });
});

// The demo: runs the BUILT `rekey` binary (child processes) against an embedded sandbox in a
// temporary REKEY_HOME, printing each command and its output. `pnpm demo` at the root.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { COOLDOWN_MINUTES, createFaucetClient, fingerprint } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { type ChildRun, runNodeScript } from "./run-child.js";

// The demo is dist/demo.cjs (a CommonJS bundle, run as a script): the command is beside it.
const binPath = join(dirname(process.argv[1] ?? "."), "rekey.cjs");

function runRekey(args: string[], env: Record<string, string | undefined>): Promise<ChildRun> {
  return runNodeScript(binPath, args, { env });
}

function quote(arg: string): string {
  return /^[\w./:=-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
}

async function main(): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), "rekey-demo-"));
  const sandbox = await startSandbox({ port: 0 });
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: workDir,
    REKEY_HOME: join(workDir, "rekey-home"),
    REKEY_API_URL: sandbox.url,
    NO_COLOR: "1",
  };

  const step = async (title: string, args: string[], expectedCode = 0): Promise<ChildRun> => {
    if (title !== "") console.log(`\n# ${title}`);
    console.log(`$ rekey ${args.map(quote).join(" ")}`);
    const result = await runRekey(args, env);
    // stderr first: the plan and notes come before the result they lead to.
    if (result.stderr.trim() !== "") console.log(indent(result.stderr));
    if (result.stdout.trim() !== "") console.log(indent(result.stdout));
    if (result.code !== 0) console.log(`  (exit code ${result.code})`);
    if (result.code !== expectedCode) {
      throw new Error(`"rekey ${args.join(" ")}" exited ${result.code}, expected ${expectedCode}`);
    }
    return result;
  };

  try {
    console.log("rekey demo: each step runs the built rekey binary; its output is indented.");
    console.log(`A local sandbox faucet at ${sandbox.url} stands in for the real one, and`);
    console.log(`credentials go to a temporary REKEY_HOME=${env.REKEY_HOME} (deleted at the end).`);
    const recoveryFile = join(workDir, "recovery-code.txt");
    await step("Register an operator; the recovery code goes to a 0600 file", [
      "register",
      "--name",
      "demo operator",
      "--recovery-code-file",
      recoveryFile,
    ]);
    // rekey prints the file's mode; check it really is 0600 rather than print it twice.
    const mode = (await stat(recoveryFile)).mode & 0o777;
    if (mode !== 0o600) throw new Error(`the recovery code file has mode ${mode.toString(8)}`);

    const alpha = await step("Create two agents", [
      "agents",
      "create",
      "alpha",
      "--budget",
      "5000",
    ]);
    const beta = await step("", ["agents", "create", "beta"]);
    const alphaId = /created agent (\d+)/.exec(alpha.stdout)?.[1];
    const betaId = /created agent (\d+)/.exec(beta.stdout)?.[1];
    if (alphaId === undefined || betaId === undefined)
      throw new Error("could not read the new agents' ids");

    await step("Status of the operator key", ["status"]);
    await step("Dry run: the plan, nothing changes", ["rotate", "--dry-run"]);
    await step("Rotate the operator key (no terminal here, so --yes)", ["rotate", "--yes"]);
    await step(`Rotate agent ${alphaId}'s key`, ["rotate", "--agent", alphaId, "--yes"]);
    await step(`Both cooldowns: the operator's ${COOLDOWN_MINUTES.operator} minutes`, ["status"]);
    await step(`... and agent ${alphaId}'s ${COOLDOWN_MINUTES.agent} minutes`, ["agents", "list"]);
    await step(
      "A withdrawal inside the operator's cooldown is refused (exit code 5)",
      ["withdraw", "--amount", "100"],
      5,
    );
    await deliveryScene(step, env, workDir, sandbox.url, betaId);
    await step("The audit log, hash chain verified", ["history", "--verify"]);
    console.log("\ndemo finished: every step behaved as expected.");
  } finally {
    await sandbox.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

type Step = (title: string, args: string[], expectedCode?: number) => Promise<ChildRun>;

/**
 * The scene that matters: the public client's credentials file and a `rekey run` child keep
 * working across an operator rotation and an agent rotation, with no manual step.
 */
async function deliveryScene(
  step: Step,
  env: Record<string, string | undefined>,
  workDir: string,
  faucetUrl: string,
  agentId: string,
): Promise<void> {
  const file = join(workDir, ".lightning-wallet", "credentials.json");
  const client = createFaucetClient({ baseUrl: faucetUrl });
  // What the public lightning-wallet client would use from the file, as fingerprints.
  const showFile = async (when: string) => {
    const parsed = JSON.parse(await readFile(file, "utf8"));
    const lines = [];
    for (const entry of ["operator", "agent"] as const) {
      const key: string | undefined = parsed[entry]?.api_key;
      if (key === undefined) continue;
      const identity = await client.whoami(key).then(
        (who) => `the faucet accepts it (${who.type} ${who.id})`,
        () => "the faucet REJECTS it",
      );
      if (!identity.startsWith("the faucet accepts"))
        throw new Error(`${entry} key in ${file} is dead`);
      lines.push(`  ${entry}: ${fingerprint(key)}, ${identity}`);
    }
    console.log(`\n# The lightning-wallet file ${when} (active: ${parsed.active})`);
    console.log(lines.join("\n"));
  };

  console.log("\n== The new key reaches everything that uses it ==");
  await step("Keep the lightning-wallet-mcp / lw credentials file up to date (operator)", [
    "deliver",
    "add",
    "lightning-wallet",
  ]);
  await step(`... and agent ${agentId}'s entry in it`, [
    "deliver",
    "add",
    "--agent",
    agentId,
    "lightning-wallet",
  ]);
  await showFile("now");

  // A long-running process using the key, as an MCP host would run lightning-wallet-mcp.
  console.log("\n# A service under rekey run, with the key in LIGHTNING_WALLET_API_KEY");
  console.log("$ rekey run -- node service.js &");
  const service = spawn(
    process.execPath,
    [
      binPath,
      "run",
      "--",
      process.execPath,
      "-e",
      'const c=require("crypto");const k=process.env.LIGHTNING_WALLET_API_KEY;console.log("service started with key fp:"+c.createHash("sha256").update(k).digest("hex").slice(0,12));setInterval(()=>{},1e6)',
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let serviceOutput = "";
  service.stdout.on("data", (chunk: Buffer) => {
    serviceOutput += chunk.toString();
  });
  service.stderr.on("data", (chunk: Buffer) => {
    serviceOutput += chunk.toString();
  });
  const serviceLines = async (count: number) => {
    const deadline = Date.now() + 10_000;
    while ((serviceOutput.match(/service started/g) ?? []).length < count) {
      if (Date.now() > deadline)
        throw new Error(`the rekey run child did not start ${count} times`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    await serviceLines(1);
    // --force: the demo rotated the operator a moment ago, so its cooldown is running.
    const operator = await step("Rotate the operator key again (--force: inside its cooldown)", [
      "rotate",
      "--yes",
      "--force",
    ]);
    await serviceLines(2);
    await step(`Rotate agent ${agentId}'s key`, ["rotate", "--agent", agentId, "--yes"]);
    await showFile("after both rotations: same file, new keys, nothing to do by hand");
    console.log("\n# What the rekey run service saw (restarted with the new key)");
    console.log(indent(serviceOutput));
    const newFingerprint = /-> (fp:[0-9a-f]{12})/.exec(operator.stdout)?.[1];
    if (newFingerprint === undefined || !serviceOutput.trimEnd().endsWith(newFingerprint)) {
      throw new Error("the rekey run child does not hold the operator's new key");
    }
    await step("Every target holds the current key", ["deliver", "list"]);
  } finally {
    service.kill("SIGTERM");
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});

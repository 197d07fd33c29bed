// The demo: runs the BUILT `rekey` binary (child processes) against an embedded sandbox in a
// temporary REKEY_HOME, printing each command and its output. `pnpm demo` at the root.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startSandbox } from "@rekey/sandbox";
import { type ChildRun, runNodeScript } from "./run-child.js";

const binPath = fileURLToPath(new URL("./bin.js", import.meta.url));

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
    await step("", ["agents", "create", "beta"]);
    const alphaId = /created agent (\d+)/.exec(alpha.stdout)?.[1];
    if (alphaId === undefined) throw new Error("could not read the new agent's id");

    await step("Status of the operator key", ["status"]);
    await step("Dry run: the plan, nothing changes", ["rotate", "--dry-run"]);
    await step("Rotate the operator key (no terminal here, so --yes)", ["rotate", "--yes"]);
    await step(`Rotate agent ${alphaId}'s key`, ["rotate", "--agent", alphaId, "--yes"]);
    await step("Both cooldowns: the operator's 60 minutes", ["status"]);
    await step(`... and agent ${alphaId}'s 30 minutes`, ["agents", "list"]);
    await step(
      "A withdrawal inside the operator's cooldown is refused (exit code 5)",
      ["withdraw", "--amount", "100"],
      5,
    );
    await step("The audit log, hash chain verified", ["history", "--verify"]);
    console.log("\ndemo finished: every step behaved as expected.");
  } finally {
    await sandbox.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});

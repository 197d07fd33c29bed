import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CliDeps } from "./context.js";
import { errorDocument } from "./json-schemas.test-helper.js";
import { runCli } from "./program.js";
import { VERSION } from "./version.js";

// Parsing and help only: openRekey throws, so any test that reaches core fails loudly.
function run(args: string[]) {
  let stdout = "";
  let stderr = "";
  let opened = false;
  const deps: CliDeps = {
    version: VERSION,
    openRekey: async () => {
      opened = true;
      throw new Error("parsing tests must not open a store");
    },
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    readStdin: async () => "",
    terminal: { stdin: false, stdout: false, stderr: false },
    env: { NO_COLOR: "1" },
    homeDir: "/nonexistent",
    promptSecret: async () => {
      throw new Error("no prompt expected");
    },
    confirm: async () => {
      throw new Error("no question expected");
    },
    clock: { now: () => Date.now() },
    waitForInterrupt: async () => {},
  };
  return runCli(deps, args).then((code) => ({ code, stdout, stderr, opened }));
}

const COMMANDS = [
  ["register"],
  ["login"],
  ["status"],
  ["rotate"],
  ["agents"],
  ["agents", "list"],
  ["agents", "create"],
  ["history"],
  ["recover"],
  ["doctor"],
  ["import", "lightning-wallet"],
  ["sandbox"],
  ["withdraw"],
];

describe("rekey command line", () => {
  it("prints the package version with --version and exits 0", async () => {
    const { version } = JSON.parse(
      readFileSync(new URL("../package.json", import.meta.url), "utf8"),
    );
    const result = await run(["--version"]);
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n`, opened: false });
    // -v means the version in every rekey binary (rekey-mcp, rekey-http, rekey-sandbox too).
    expect(await run(["-v"])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it("help shows no default for boolean flags", async () => {
    for (const command of [[], ...COMMANDS]) {
      const help = await run([...command, "--help"]);
      expect(help.stdout).not.toContain("(default: false)");
    }
    expect((await run(["--help"])).stdout).toMatch(/--verbose\s/);
  });

  it("lists every command in --help", async () => {
    const result = await run(["--help"]);
    expect(result.code).toBe(0);
    for (const name of ["register", "login", "status", "rotate", "agents", "history"]) {
      expect(result.stdout).toContain(name);
    }
    for (const name of ["recover", "doctor", "import", "sandbox", "withdraw"]) {
      expect(result.stdout).toContain(name);
    }
    expect(result.stdout).toContain("--json");
  });

  it.each(COMMANDS.map((command) => [command.join(" "), command] as const))(
    "%s --help shows examples",
    async (_name, command) => {
      const result = await run([...command, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain("Examples:");
      expect(result.stdout).toContain("$ rekey");
      expect(result.opened).toBe(false);
    },
  );

  it("suggests the closest command for a typo and exits 2", async () => {
    const result = await run(["rotat"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command 'rotat'");
    expect(result.stderr).toContain("Did you mean rotate?");
  });

  it("suggests the closest option for a typo", async () => {
    const result = await run(["rotate", "--dry-rn"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Did you mean --dry-run?");
  });

  it("has no option that takes a key on the command line", async () => {
    for (const command of ["login", "rotate", "recover", "register", "status"]) {
      const result = await run([command, "--key", "lf_not_a_real_key_but_long_enough_0000"]);
      expect(result.code).toBe(2);
      expect(result.opened).toBe(false);
      expect(result.stderr).not.toContain("lf_not_a_real_key");
    }
  });

  it("refuses --agent together with --all-agents", async () => {
    const result = await run(["rotate", "--agent", "3", "--all-agents", "--yes"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cannot be used with/);
    expect(result.opened).toBe(false);
  });

  it("prints a usage error as a JSON document on stderr with --json", async () => {
    const result = await run(["rotat", "--json"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const document = errorDocument.parse(JSON.parse(result.stderr));
    expect(document.error.code).toBe("INVALID_INPUT");
    expect(document.error.message).toContain("unknown command 'rotat'");
  });

  it("requires --amount for withdraw", async () => {
    const result = await run(["withdraw"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--amount");
  });

  it("requires a name for agents create", async () => {
    const result = await run(["agents", "create"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("missing required argument 'name'");
  });

  it("completion bash completes commands, subcommands and each command's options", async () => {
    const script = await run(["completion", "bash"]);
    expect(script.code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), "rekey-completion-"));
    try {
      const file = join(dir, "rekey.bash");
      writeFileSync(file, script.stdout);
      const complete = (...typed: string[]) =>
        execFileSync(
          "bash",
          [
            "-c",
            `source "$0"; COMP_WORDS=(rekey "$@"); COMP_CWORD=$#; _rekey_completion; echo "\${COMPREPLY[*]}"`,
            file,
            ...typed,
          ],
          { encoding: "utf8" },
        ).trim();
      expect(complete("ro")).toBe("rotate");
      expect(complete("rotate", "--a").split(" ").sort()).toEqual([
        "--agent",
        "--all-agents",
        "--as",
      ]);
      expect(complete("agents", "c")).toBe("create");
      expect(complete("history", "--pr")).toMatch(/--principal/);
      expect(complete("--json", "hist")).toBe("history");
      expect(complete("completion", "").split(" ")).toEqual(
        expect.arrayContaining(["bash", "zsh", "fish"]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("completion zsh and fish print scripts; another shell is a usage error", async () => {
    expect((await run(["completion", "zsh"])).stdout).toContain("bashcompinit");
    const fish = (await run(["completion", "fish"])).stdout;
    expect(fish).toContain("complete -c rekey -n __fish_use_subcommand -a rotate");
    expect(fish).toContain("complete -c rekey -n '__fish_seen_subcommand_from rotate' -l agent");
    const refused = await run(["completion", "tcsh"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/bash, zsh, fish/);
  });
});

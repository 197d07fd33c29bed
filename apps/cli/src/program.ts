// The subpath, not the package: --help loads this module and must not load core.
import { COOLDOWN_MINUTES } from "@rekey/core/cooldowns";
import { Argument, Command, CommanderError, Option } from "commander";
import { CommandNotRun } from "./command-not-run.js";
import { COMPLETION_SHELLS, type CompletionShell, completionScript } from "./completion.js";
import type { CliDeps, CommandContext, GlobalOptions } from "./context.js";
import { EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, exitCodeFor } from "./exit-codes.js";
import { createOutput, JSON_SCHEMA_VERSION, type Output } from "./output.js";
import { PromptCancelled } from "./prompt-cancelled.js";

// Command implementations and @rekey/core are imported inside the actions (`await import`),
// so `rekey --version` and `rekey --help` load commander and nothing else.

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join("\n")}\n`;
}

/** How {@link runCli} hooks into a program. */
export interface ProgramSettings {
  /** Called when a command printed its result but sets a non-zero exit code. */
  onExitCode?: (code: number) => void;
  /** Usage errors are printed as JSON by the caller, so commander stays silent. */
  jsonErrors?: boolean;
}

/** The options of the innermost command merged with the global ones. */
type ActionOptions = Record<string, unknown>;

/**
 * Builds the `rekey` program. Nothing runs until `parseAsync`; every command's output goes
 * to `deps.stdout`/`deps.stderr`, and commander's own errors throw (exitOverride) instead of
 * exiting, so {@link runCli} can run it in-process.
 */
export function createProgram(deps: CliDeps, settings: ProgramSettings = {}) {
  const onExitCode = settings.onExitCode ?? (() => {});
  const program = new Command("rekey");

  const context = (command: Command): CommandContext => {
    const globals = readGlobals(command.optsWithGlobals());
    const output = outputFor(deps, globals);
    return {
      deps,
      globals,
      output,
      interactive: deps.terminal.stdin && deps.terminal.stderr,
      setExitCode: onExitCode,
      async withRekey(use) {
        const session = await deps.openRekey(globals);
        output.debug(
          `store: ${session.store.kind} ${session.store.location}; profile: ${session.rekey.profileName}`,
        );
        try {
          return await use(session);
        } finally {
          await session.close();
        }
      },
    };
  };

  program
    .description("Rotate Lightning Faucet API keys safely: stored before used, never leaked.")
    .version(deps.version, "-v, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .option("--profile <name>", "credential profile (env REKEY_PROFILE; default: default)")
    .option(
      "--store <spec>",
      "credential store: memory | DIR | file:DIR | postgres://URL (env REKEY_STORE; keep a database password in PGPASSWORD, not here)",
    )
    .option("--url <url>", "faucet base URL for a new profile (env REKEY_API_URL)")
    .option(
      "--as <principal>",
      "act as a principal stored on the profile's faucet: agent:ID or operator:ID (env REKEY_AS)",
    )
    .option(
      "--json",
      `print one JSON document (schemaVersion ${JSON_SCHEMA_VERSION}) instead of text`,
    )
    .option("-q, --quiet", "print results only: no notes, no progress")
    .option("--verbose", "print details of what happens (never keys)")
    .showSuggestionAfterError(true)
    .showHelpAfterError(settings.jsonErrors === true ? false : "(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => deps.stdout.write(text),
      writeErr: (text) => deps.stderr.write(text),
      // With --json a usage error is printed as JSON by runCli instead.
      outputError: (text, write) => {
        if (settings.jsonErrors !== true) write(text);
      },
    })
    .addHelpText(
      "after",
      examples(
        "rekey register --recovery-code-file ./recovery.txt",
        "rekey status",
        "rekey rotate --dry-run",
        "rekey rotate --all-agents --yes",
        "rekey history --verify",
      ),
    );

  program
    .command("register")
    .description("create a new operator account and store its key")
    .option("--name <name>", "operator name")
    .option("--email <email>", "contact email")
    .option("--recovery-code-file <path>", "write the recovery code to this new file (mode 0600)")
    .option("--show-recovery-code", "include the recovery code in --json output")
    .addHelpText(
      "after",
      examples(
        "rekey register --name ops --recovery-code-file ~/rekey-recovery.txt",
        "rekey register --json --show-recovery-code",
      ),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runRegister } = await import("./commands/register.js");
      await runRegister(context(command), options);
    });

  program
    .command("login")
    .description("store an existing key (read from stdin or a hidden prompt, never from argv)")
    .option(
      "--replace",
      "point the profile at this key's principal even when it acts as another (whose record is kept)",
    )
    .addHelpText(
      "after",
      [
        "\nA key of another principal than the profile's is stored in its own record; the profile",
        "is repointed only with --replace, and no stored key is ever dropped (see `rekey forget`).",
        examples(
          "rekey login",
          'printf "%s" "$LF_KEY" | rekey login',
          "rekey --profile agent7 login < agent-key.txt",
          "rekey login --replace < other-operator-key.txt",
        ),
      ].join("\n"),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runLogin } = await import("./commands/login.js");
      await runLogin(context(command), options);
    });

  program
    .command("forget")
    .description("remove a principal's record and key from the store (audited)")
    .argument("<principal>", "agent:ID or operator:ID, as `rekey profiles show` lists them")
    .option("-y, --yes", "forget even a key the faucet still accepts, without asking")
    .addHelpText("after", examples("rekey forget agent:7", "rekey forget operator:3 --yes"))
    .action(async (principal: string, options: ActionOptions, command: Command) => {
      const { runForget } = await import("./commands/forget.js");
      await runForget(context(command), principal, options);
    });

  const profiles = program
    .command("profiles")
    .description(
      "list, show, switch, rename or remove profiles (views; keys stay in their records)",
    )
    .addHelpText(
      "after",
      examples("rekey profiles", "rekey profiles use ops", "rekey profiles show agent7 --json"),
    );
  profiles
    .command("list", { isDefault: true })
    .description("list the profiles of the store")
    .action(async (_options: ActionOptions, command: Command) => {
      const { runProfilesList } = await import("./commands/profiles.js");
      await runProfilesList(context(command));
    });
  profiles
    .command("show")
    .description("show one profile: faucet, operator, principal acted as, principals seen")
    .argument("[name]", "profile (default: the current one)")
    .action(async (name: string | undefined, _options: ActionOptions, command: Command) => {
      const { runProfilesShow } = await import("./commands/profiles.js");
      await runProfilesShow(context(command), name);
    });
  profiles
    .command("use")
    .description("make a profile the one used when none is named")
    .argument("<name>", "profile")
    .action(async (name: string, _options: ActionOptions, command: Command) => {
      const { runProfilesUse } = await import("./commands/profiles.js");
      await runProfilesUse(context(command), name);
    });
  profiles
    .command("rename")
    .description("rename a profile")
    .argument("<from>", "current name")
    .argument("<to>", "new name")
    .action(async (from: string, to: string, _options: ActionOptions, command: Command) => {
      const { runProfilesRename } = await import("./commands/profiles.js");
      await runProfilesRename(context(command), from, to);
    });
  profiles
    .command("remove")
    .description("remove a profile; the principals' records and keys stay (see `rekey forget`)")
    .argument("<name>", "profile")
    .action(async (name: string, _options: ActionOptions, command: Command) => {
      const { runProfilesRemove } = await import("./commands/profiles.js");
      await runProfilesRemove(context(command), name);
    });

  program
    .command("status")
    .description("show identity, key fingerprint and age, cooldown, unfinished rotations, store")
    .option("--agent <id>", "show one agent instead of the active principal")
    .addHelpText("after", examples("rekey status", "rekey status --agent 7 --json"))
    .action(async (options: ActionOptions, command: Command) => {
      const { runStatus } = await import("./commands/status.js");
      await runStatus(context(command), options);
    });

  program
    .command("rotate")
    .description("rotate a key: the old key stops working at once and a withdrawal cooldown starts")
    .addOption(new Option("--agent <id>", "rotate one agent's key").conflicts(["allAgents", "due"]))
    .addOption(new Option("--all-agents", "rotate every agent of the operator").conflicts("due"))
    .addOption(
      new Option(
        "--due",
        "rotate every key whose rotation policy says it is due (for cron and systemd timers)",
      ).conflicts(["force", "reveal"]),
    )
    .option("--dry-run", "show the plan and change nothing")
    .option("-y, --yes", "do not ask for confirmation (required without a terminal)")
    .option("--force", "rotate even inside the cooldown of the previous rotation")
    .option("--reveal", "print the new raw key (otherwise only its fingerprint)")
    .option("--concurrency <n>", "agents rotated at once with --all-agents", "4")
    .addHelpText(
      "after",
      [
        `\nCooldowns: rotating the operator key blocks its withdrawals for ${COOLDOWN_MINUTES.operator} minutes; an agent's`,
        `for ${COOLDOWN_MINUTES.agent} minutes. With --all-agents, agents still inside a cooldown (for example rotated by`,
        "an interrupted run) are reported as already rotated and skipped unless --force.",
        "\nWith --due, keys are rotated as their policy says (rekey policy set): those in a",
        "cooldown or with an unfinished rotation are skipped. Exit 0: all well; a failure's code;",
        "12: a key is overdue. Run it from cron or a systemd timer (docs/operations.md).",
        examples(
          "rekey rotate --dry-run",
          "rekey rotate --yes",
          "rekey rotate --agent 7 --yes",
          "rekey rotate --all-agents --yes --json",
          "rekey rotate --due --json",
        ),
      ].join("\n"),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runRotate } = await import("./commands/rotate.js");
      await runRotate(context(command), options);
    });

  const policy = program
    .command("policy")
    .description("when keys are rotated on a schedule: max-age, window, jitter")
    .addHelpText(
      "after",
      [
        "\nDurations are read by the `ms` library (30d, 12h, 20m). A window is DAYS HH:MM-HH:MM",
        "[ZONE]: DAYS is daily or days and ranges (Mon-Fri, Sat,Sun), ZONE an IANA time zone",
        "(default UTC). `rekey rotate --due` and `rekey-http --scheduler` run what is due.",
        examples(
          "rekey policy set --max-age 90d",
          "rekey policy set --all-agents --max-age 30d --window 'Mon-Fri 02:00-04:00 Europe/Berlin' --jitter 20m",
          "rekey policy list",
        ),
      ].join("\n"),
    );
  policy
    .command("set")
    .description("set the rotation policy of the active principal, an agent, or every agent")
    .addOption(new Option("--agent <id>", "one agent's policy").conflicts("allAgents"))
    .option("--all-agents", "every agent whose key the store holds")
    .requiredOption("--max-age <duration>", "rotate once the key is this old (e.g. 30d)")
    .option(
      "--window <window>",
      "only start rotations then (e.g. 'Mon-Fri 02:00-04:00 Europe/Berlin')",
    )
    .option("--jitter <duration>", "spread principals over this long after the window opens")
    .option("--grace <duration>", "report a key overdue this long past its rotation (default 1d)")
    .action(async (options: ActionOptions, command: Command) => {
      const { runPolicySet } = await import("./commands/policy.js");
      await runPolicySet(context(command), options);
    });
  policy
    .command("list", { isDefault: true })
    .description("list rotation policies with each key's next rotation and window")
    .action(async (_options: ActionOptions, command: Command) => {
      const { runPolicyList } = await import("./commands/policy.js");
      await runPolicyList(context(command));
    });
  policy
    .command("clear")
    .description("remove the rotation policy of the active principal, an agent, or every agent")
    .addOption(new Option("--agent <id>", "one agent's policy").conflicts("allAgents"))
    .option("--all-agents", "every agent whose key the store holds")
    .action(async (options: ActionOptions, command: Command) => {
      const { runPolicyClear } = await import("./commands/policy.js");
      await runPolicyClear(context(command), options);
    });

  const agents = program
    .command("agents")
    .description("list or create the operator's agents")
    .addHelpText("after", examples("rekey agents", "rekey agents create trader --budget 5000"));
  agents
    .command("list", { isDefault: true })
    .description("list agents with their key fingerprints and cooldowns")
    .addHelpText("after", examples("rekey agents list", "rekey agents list --json"))
    .action(async (_options: ActionOptions, command: Command) => {
      const { runAgentsList } = await import("./commands/agents.js");
      await runAgentsList(context(command));
    });
  agents
    .command("create")
    .description("create an agent and store its key")
    .argument("<name>", "agent name")
    .option("--budget <sats>", "budget limit in sats")
    .option("--description <text>", "agent description")
    .addHelpText(
      "after",
      examples("rekey agents create trader", "rekey agents create bot --budget 1000"),
    )
    .action(async (name: string, options: ActionOptions, command: Command) => {
      const { runAgentsCreate } = await import("./commands/agents.js");
      await runAgentsCreate(context(command), name, options);
    });

  program
    .command("history")
    .description("show the audit log of this store")
    .option("--verify", "check the audit log's hash chain (exit 7 when broken)")
    .option("--principal <who>", "only entries about operator or an agent id")
    .option("--since <time>", "only entries since a date or time, or an age: 90m, 24h, 7d")
    .option("--limit <n>", "only the most recent n entries")
    .addHelpText(
      "after",
      [
        "\nThe global --profile shows only that profile's entries.",
        examples(
          "rekey history",
          "rekey history --verify --json",
          "rekey history --profile work --principal 7 --since 24h --limit 20",
        ),
      ].join("\n"),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runHistory } = await import("./commands/history.js");
      await runHistory(context(command), options);
    });

  program
    .command("recover")
    .description("get a new operator key with the recovery code (stdin or a hidden prompt)")
    .option("--force", "recover even inside a withdrawal cooldown (restarts it)")
    .option("-y, --yes", "confirm without asking (required without a terminal, with --force)")
    .addHelpText(
      "after",
      examples(
        "rekey recover",
        "rekey recover < ~/rekey-recovery.txt",
        "rekey recover --force --yes < ~/rekey-recovery.txt",
      ),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runRecover } = await import("./commands/recover.js");
      await runRecover(context(command), options);
    });

  const rescue = program
    .command("rescue")
    .description("bring back keys the store refused (kept in rescue files outside the store)");
  rescue
    .command("import")
    .description("store the key of a rescue file, finish its rotation, remove the file")
    .argument("<file>", "the rescue file an error named")
    .addHelpText("after", examples("rekey rescue import ~/.local/state/rekey/rescue/FILE.json"))
    .action(async (file: string, _options: ActionOptions, command: Command) => {
      const { runRescueImport } = await import("./commands/rescue.js");
      await runRescueImport(context(command), file);
    });

  program
    .command("acknowledge")
    .description("acknowledge a recorded key loss (KEY_LOST) that status and doctor show")
    .option("--agent <id>", "an agent's loss instead of the profile's own")
    .addHelpText("after", examples("rekey acknowledge", "rekey acknowledge --agent 7"))
    .action(async (options: ActionOptions, command: Command) => {
      const { runAcknowledge } = await import("./commands/rescue.js");
      await runAcknowledge(context(command), options);
    });

  program
    .command("doctor")
    .description(
      "check the store (file modes, free space) and the faucet; report unfinished rotations",
    )
    .option(
      "--repair",
      "resolve unfinished rotations; settle keys kept beside a record by the migration",
    )
    .addHelpText("after", examples("rekey doctor", "rekey doctor --repair"))
    .action(async (options: ActionOptions, command: Command) => {
      const { runDoctor } = await import("./commands/doctor.js");
      await runDoctor(context(command), options);
    });

  program
    .command("store")
    .description("the credential store itself: its master key")
    .command("rekey-master")
    .description(
      "seal every stored key again under a new master key (resumable; both keys accepted until done; audited)",
    )
    .requiredOption(
      "--new-key <source>",
      "file:PATH (a 0600 file holding the base64 key), env:VARIABLE, or generate (a store's own master.key)",
    )
    .addHelpText(
      "after",
      examples(
        "rekey store rekey-master --new-key generate",
        "rekey store rekey-master --new-key file:/run/secrets/rekey-master-key",
        "REKEY_NEW_MASTER_KEY=... rekey store rekey-master --new-key env:REKEY_NEW_MASTER_KEY",
      ),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runStoreRekeyMaster } = await import("./commands/store.js");
      await runStoreRekeyMaster(context(command), options);
    });

  program
    .command("run")
    .description(
      "run a command with the current key in its environment; restart it when the key rotates",
    )
    .argument("<command...>", "the command and its arguments, after --")
    .option("--agent <id>", "an agent's key instead of the active principal's")
    .option("--env <name>", "the variable that holds the key", "LIGHTNING_WALLET_API_KEY")
    .addOption(
      new Option("--restart", "restart the command on a rotation (the default)").conflicts(
        "signal",
      ),
    )
    .option("--signal <sig>", "send this signal on a rotation instead of restarting (HUP, USR1...)")
    .addHelpText(
      "after",
      [
        "\nThe key goes in the command's environment, never on its command line. Signals sent to",
        "rekey are passed to the command, and rekey exits with the command's exit code: 127 when",
        "the command is not found, 126 when it cannot be executed (as env and shells exit).",
        examples(
          "rekey run -- npx -y lightning-wallet-mcp",
          "rekey run --agent 7 -- node agent.js",
          "rekey run --env WALLET_KEY --signal HUP -- ./service",
        ),
      ].join("\n"),
    )
    .action(async (command: string[], options: ActionOptions, cmd: Command) => {
      const { runRun } = await import("./commands/run.js");
      await runRun(context(cmd), command, options);
    });

  const deliver = program
    .command("deliver")
    .description(
      "deliver each new key to the places that use it (files, commands, stores, webhooks)",
    )
    .addHelpText(
      "after",
      [
        "\nAfter every rotation of the principal (the active one, or --agent ID), rekey delivers the",
        "new key to each target and records pending, then delivered or failed. A failed delivery",
        "never undoes the rotation: status shows the target as failing, and it is retried.",
        examples(
          "rekey deliver add lightning-wallet",
          "rekey deliver add dotenv ./service.env --var LIGHTNING_WALLET_API_KEY",
          "rekey deliver add exec -- /usr/local/bin/reload-key --service trader",
          "rekey deliver add --agent 7 store /srv/agent7/rekey",
          "rekey deliver add webhook https://ops.example/rekey --secret-file ~/.config/rekey/hook.secret",
          "rekey deliver list",
          "rekey deliver retry",
        ),
      ].join("\n"),
    );
  deliver
    .command("add")
    .description("add a target and deliver the current key to it now")
    .argument(
      "<kind>",
      "lightning-wallet [FILE] | dotenv FILE | exec -- CMD ARGS | store DIR|URL | webhook URL",
    )
    .argument("[args...]", "the target: a file, a command, a store or a URL")
    .option("--agent <id>", "an agent's key instead of the active principal's")
    .option("--var <name>", "dotenv: the variable to set", "LIGHTNING_WALLET_API_KEY")
    .option("--secret-file <path>", "webhook: the file holding the signing secret (0600)")
    .option("--timeout <seconds>", "exec, webhook: how long to wait (default 30)")
    .action(async (kind: string, args: string[], options: ActionOptions, command: Command) => {
      const { runDeliverAdd } = await import("./commands/deliver.js");
      await runDeliverAdd(context(command), kind, args, options);
    });
  deliver
    .command("list", { isDefault: true })
    .description("list the targets: current, stale (an older key) or failing")
    .option("--agent <id>", "an agent's targets")
    .action(async (options: ActionOptions, command: Command) => {
      const { runDeliverList } = await import("./commands/deliver.js");
      await runDeliverList(context(command), options);
    });
  deliver
    .command("remove")
    .description("remove a target (the file or service keeps what it holds)")
    .argument("<id>", "the target's id, as listed")
    .option("--agent <id>", "an agent's target")
    .action(async (id: string, options: ActionOptions, command: Command) => {
      const { runDeliverRemove } = await import("./commands/deliver.js");
      await runDeliverRemove(context(command), id, options);
    });
  deliver
    .command("test")
    .description("deliver the current key to one target now, even if it holds it")
    .argument("<id>", "the target's id")
    .option("--agent <id>", "an agent's target")
    .action(async (id: string, options: ActionOptions, command: Command) => {
      const { runDeliverNow } = await import("./commands/deliver.js");
      await runDeliverNow(context(command), "test", id, options);
    });
  deliver
    .command("retry")
    .description("deliver now to every target (or one) that does not hold the current key")
    .argument("[id]", "only this target")
    .option("--agent <id>", "an agent's targets")
    .action(async (id: string | undefined, options: ActionOptions, command: Command) => {
      const { runDeliverNow } = await import("./commands/deliver.js");
      await runDeliverNow(context(command), "retry", id, options);
    });

  program
    .command("import")
    .description("import keys kept by other tools")
    .command("lightning-wallet")
    .description(
      "import the lightning-wallet-mcp / lw credentials file (each key verified before it is stored)",
    )
    .option(
      "--file <path>",
      "credentials file (default $LIGHTNING_WALLET_HOME/credentials.json or ~/.lightning-wallet/credentials.json)",
    )
    .option(
      "--deliver",
      "also write each new key into the file after a rotation (asked on a terminal)",
    )
    .option("--no-deliver", "do not add the file as a delivery target")
    .addHelpText(
      "after",
      examples(
        "rekey import lightning-wallet",
        "rekey import lightning-wallet --file ./credentials.json",
      ),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runImportLightningWallet } = await import("./commands/import-lightning-wallet.js");
      await runImportLightningWallet(context(command), options);
    });

  program
    .command("sandbox")
    .description("run the local faucet sandbox until Ctrl-C")
    .option("--port <port>", "port on 127.0.0.1 (0 picks a free one)", "0")
    .option("--data <file>", "keep the sandbox state in this file across restarts")
    .option("--test-clock", "start with a test clock (sandbox_advance_clock)")
    .addHelpText(
      "after",
      examples(
        "rekey sandbox --port 8787",
        "REKEY_API_URL=http://127.0.0.1:8787/ai-agents/api rekey register --recovery-code-file r.txt",
      ),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runSandbox } = await import("./commands/sandbox.js");
      await runSandbox(context(command), options);
    });

  program
    .command("ui")
    .description("open the web console on 127.0.0.1 with a one-time login link (runs rekey-http)")
    .option("--port <port>", "port on 127.0.0.1 (0 picks a free one)", "0")
    .option("--no-open", "print the login link without opening a browser")
    .addHelpText("after", examples("rekey ui", "rekey ui --port 8788 --no-open"))
    .action(async (options: ActionOptions, command: Command) => {
      const { runUi } = await import("./commands/ui.js");
      await runUi(context(command), options);
    });

  program
    .command("withdraw")
    .description("withdraw sats (sandbox stand-in); refused during a cooldown")
    .requiredOption("--amount <sats>", "amount in sats")
    .option("--agent <id>", "withdraw as this agent instead of the active principal")
    .addHelpText(
      "after",
      examples("rekey withdraw --amount 100", "rekey withdraw --amount 50 --agent 7"),
    )
    .action(async (options: ActionOptions, command: Command) => {
      const { runWithdraw } = await import("./commands/withdraw.js");
      await runWithdraw(context(command), options);
    });

  program
    .command("completion")
    .description("print a shell completion script: bash, zsh or fish")
    .addArgument(new Argument("<shell>", "the shell").choices(COMPLETION_SHELLS))
    .addHelpText(
      "after",
      examples(
        "source <(rekey completion bash)      # in ~/.bashrc",
        "source <(rekey completion zsh)       # in ~/.zshrc",
        "rekey completion fish > ~/.config/fish/completions/rekey.fish",
      ),
    )
    .action((shell: CompletionShell) => {
      deps.stdout.write(completionScript(program, shell));
    });

  // Subcommands inherit the output and error settings of the program.
  for (const command of allCommands(program)) {
    if (command === program) continue;
    command
      .exitOverride()
      .showSuggestionAfterError(true)
      .configureOutput(program.configureOutput());
  }

  return program;
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

function readGlobals(options: Record<string, unknown>): GlobalOptions {
  const text = (value: unknown) => (typeof value === "string" ? value : undefined);
  return {
    profile: text(options.profile),
    store: text(options.store),
    url: text(options.url),
    as: text(options.as),
    json: options.json === true,
    quiet: options.quiet === true,
    verbose: options.verbose === true,
  };
}

function outputFor(
  deps: CliDeps,
  globals: Pick<GlobalOptions, "json" | "quiet" | "verbose">,
): Output {
  const noColor = deps.env.NO_COLOR !== undefined && deps.env.NO_COLOR !== "";
  return createOutput({
    stdout: deps.stdout,
    stderr: deps.stderr,
    json: globals.json,
    quiet: globals.quiet,
    verbose: globals.verbose,
    color: deps.terminal.stdout && !noColor,
    // A person reads a terminal: local time. Pipes, files and --json keep ISO-8601 UTC.
    localTime: deps.terminal.stdout,
    timeZone: deps.env.TZ === undefined || deps.env.TZ === "" ? undefined : deps.env.TZ,
  });
}

/**
 * Runs the CLI on `args` (without the node and script paths) and returns the exit code.
 * The one place that turns errors into exit codes: commander usage errors are 2, Ctrl-C at a prompt 130, a
 * command `rekey run` cannot start 127 or 126 ({@link CommandNotRun}), a RekeyError maps through
 * {@link exitCodeFor}, anything else is INTERNAL (1).
 */
export async function runCli(deps: CliDeps, args: string[]): Promise<number> {
  let exitCode = EXIT_OK;
  // Read before parsing, because a usage error stops the parse before options are known.
  const flags = {
    json: args.includes("--json"),
    quiet: args.includes("--quiet") || args.includes("-q"),
    verbose: args.includes("--verbose"),
  };
  const program = createProgram(deps, {
    jsonErrors: flags.json,
    onExitCode: (code) => {
      if (exitCode === EXIT_OK) exitCode = code;
    },
  });
  try {
    await program.parseAsync(args, { from: "user" });
    return exitCode;
  } catch (error) {
    const output = outputFor(deps, flags);
    if (error instanceof PromptCancelled) {
      // A cancel is not an error report: one line, whatever the output mode.
      deps.stderr.write(`${error.message}\n`);
      return EXIT_CANCELLED;
    }
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return EXIT_OK;
      if (flags.json) {
        output.error({
          code: "INVALID_INPUT",
          message: error.message.replace(/^error: /, ""),
          issues: [error.code],
        });
      }
      return EXIT_USAGE;
    }
    const { errorFacts, errorView, redactKeys, toRekeyError } = await import("@rekey/core");
    const rekeyError = toRekeyError(error instanceof CommandNotRun ? error.error : error);
    output.error(errorView(errorFacts(rekeyError, deps.clock.now())));
    if (flags.verbose && rekeyError.cause instanceof Error && rekeyError.cause.stack) {
      deps.stderr.write(`${redactKeys(rekeyError.cause.stack)}\n`);
    }
    return error instanceof CommandNotRun ? error.exitCode : exitCodeFor(rekeyError.code);
  }
}

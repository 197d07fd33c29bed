import type { Command } from "commander";

/** The shells `rekey completion` writes a script for. */
export const COMPLETION_SHELLS = ["bash", "zsh", "fish"] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

interface Level {
  /** The subcommand words leading here ("" for the program, "agents create" ...). */
  path: string;
  command: Command;
}

/** Every command with the words that lead to it, the program first. */
function levels(command: Command, path = ""): Level[] {
  return [
    { path, command },
    ...command.commands.flatMap((child) =>
      levels(child, path === "" ? child.name() : `${path} ${child.name()}`),
    ),
  ];
}

/** What may follow at a level: its subcommands, its options and the program's own. */
function words(level: Level, program: Command): string[] {
  const options = [...level.command.options, ...(level.command === program ? [] : program.options)]
    .map((option) => option.long)
    .filter((name): name is string => name !== undefined);
  const choices = level.command.registeredArguments.flatMap(
    (argument) => argument.argChoices ?? [],
  );
  return [...level.command.commands.map((child) => child.name()), ...choices, ...options, "--help"];
}

function bashScript(program: Command): string {
  const name = program.name();
  const all = levels(program);
  const steps = all
    .filter((level) => level.path !== "")
    .map((level) => {
      const parent = level.path.split(" ").slice(0, -1).join(" ");
      return `      "${parent}:${level.command.name()}") path="${level.path}" ;;`;
    });
  const cases = all.map(
    (level) => `    "${level.path}") words="${words(level, program).join(" ")}" ;;`,
  );
  const fn = `_${name.replaceAll("-", "_")}_completion`;
  return `# ${name} completion for bash (zsh through bashcompinit). Load it with:
#   source <(${name} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" words="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "$path:\${COMP_WORDS[i]}" in
${steps.join("\n")}
    esac
  done
  case "$path" in
${cases.join("\n")}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F ${fn} ${name}
`;
}

function zshScript(program: Command): string {
  return `#compdef ${program.name()}
# ${program.name()} completion for zsh. Load it with:
#   source <(${program.name()} completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(program)}`;
}

/** Quotes a description for fish's -d. */
function fishText(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function fishScript(program: Command): string {
  const name = program.name();
  const lines = [
    `# ${name} completion for fish. Load it with:`,
    `#   ${name} completion fish | source`,
    `complete -c ${name} -f`,
  ];
  for (const option of program.options) {
    if (option.long === undefined) continue;
    lines.push(
      `complete -c ${name} -l ${option.long.slice(2)} -d ${fishText(option.description)}${option.required ? " -r" : ""}`,
    );
  }
  for (const level of levels(program)) {
    if (level.command === program) {
      for (const child of program.commands) {
        lines.push(
          `complete -c ${name} -n __fish_use_subcommand -a ${child.name()} -d ${fishText(child.description())}`,
        );
      }
      continue;
    }
    const condition = `__fish_seen_subcommand_from ${level.command.name()}`;
    for (const child of level.command.commands) {
      lines.push(
        `complete -c ${name} -n '${condition}' -a ${child.name()} -d ${fishText(child.description())}`,
      );
    }
    for (const option of level.command.options) {
      if (option.long === undefined) continue;
      lines.push(
        `complete -c ${name} -n '${condition}' -l ${option.long.slice(2)} -d ${fishText(option.description)}${option.required ? " -r" : ""}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The completion script for `shell`, built from the program's commands and options. */
export function completionScript(program: Command, shell: CompletionShell): string {
  if (shell === "bash") return bashScript(program);
  if (shell === "zsh") return zshScript(program);
  return fishScript(program);
}

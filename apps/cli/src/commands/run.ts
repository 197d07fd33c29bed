import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { type KeyProvider, type Principal, RekeyError } from "@rekey/core";
import { CommandNotRun } from "../command-not-run.js";
import type { CommandContext } from "../context.js";
import { EXIT_COMMAND_NOT_EXECUTABLE, EXIT_COMMAND_NOT_FOUND } from "../exit-codes.js";
import { parseAgentOption } from "./input.js";

/**
 * `rekey run [--agent ID] [--env NAME] [--restart | --signal SIG] -- CMD ARGS`: runs a command
 * with the current key in its environment (LIGHTNING_WALLET_API_KEY by default, the variable
 * the public lightning-wallet client reads first), watches the store, and when the key
 * changes (a rotation here, in another process or on another replica of a shared store)
 * restarts the command with the new key, or sends it a signal. Signals sent to rekey reach the
 * command; rekey exits with the command's exit code (128+n for a signal), like `doppler run
 * --watch`, or 127 / 126 when it is not found / cannot be executed. The key is never on the
 * command's argv.
 */

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// Variables that would hand the command the key that just died, whatever --env names.
const KEY_VARIABLES = ["REKEY_API_KEY", "LIGHTNING_WALLET_API_KEY"];
// How long a restarted command gets to exit on SIGTERM before SIGKILL.
const STOP_GRACE_MS = 10_000;

/** @throws RekeyError INVALID_INPUT for a missing command, a bad variable name or signal. */
export function parseRunOptions(command: string[], options: Record<string, unknown>) {
  if (command.length === 0 || command[0] === "") {
    throw new RekeyError("INVALID_INPUT", "No command to run", {
      hint: "Put the command after --, e.g. rekey run -- npx lightning-wallet-mcp",
    });
  }
  const variable = typeof options.env === "string" ? options.env : "LIGHTNING_WALLET_API_KEY";
  if (!ENV_NAME.test(variable)) {
    throw new RekeyError(
      "INVALID_INPUT",
      `--env ${JSON.stringify(variable.slice(0, 40))} is not a variable name`,
    );
  }
  let signal: NodeJS.Signals | undefined;
  if (typeof options.signal === "string") {
    const name = options.signal.toUpperCase().replace(/^(?!SIG)/, "SIG");
    if (!Object.hasOwn(constants.signals, name)) {
      throw new RekeyError(
        "INVALID_INPUT",
        `--signal ${JSON.stringify(options.signal.slice(0, 20))} is not a signal`,
        {
          hint: "Use a name such as HUP, USR1 or SIGUSR2.",
        },
      );
    }
    signal = name as NodeJS.Signals;
  }
  return { variable, signal, principal: parseAgentOption(options.agent) };
}

export async function runRun(
  context: CommandContext,
  command: string[],
  options: Record<string, unknown>,
): Promise<void> {
  const { variable, signal, principal } = parseRunOptions(command, options);
  const code = await context.withRekey(({ rekey, store }) =>
    superviseCommand({
      command,
      variable,
      signal,
      principal,
      keyProvider: rekey.keyProvider,
      watch: (listener) => store.watch(listener),
      env: context.deps.env,
      onSignals: context.deps.onSignals,
      note: (text) => context.output.note(text),
    }),
  );
  context.setExitCode(code);
}

interface Supervision {
  command: string[];
  variable: string;
  signal: NodeJS.Signals | undefined;
  principal: Principal | undefined;
  keyProvider: KeyProvider;
  watch(listener: () => void): () => void;
  env: Record<string, string | undefined>;
  onSignals: ((handler: (signal: NodeJS.Signals) => void) => () => void) | undefined;
  note(text: string): void;
}

/** Runs the command until it exits on its own; resolves with its exit code. */
function superviseCommand(run: Supervision): Promise<number> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess | undefined;
    let fingerprint: string | undefined;
    let restarting = false;
    let checking: Promise<void> | undefined;
    let done = false;

    const start = async () => {
      const current = await run.keyProvider.current(run.principal);
      fingerprint = current.fingerprint;
      const env: Record<string, string> = {};
      for (const [name, value] of Object.entries(run.env)) {
        if (value !== undefined && !KEY_VARIABLES.includes(name)) env[name] = value;
      }
      env[run.variable] = current.key;
      const [file = "", ...args] = run.command;
      let started: ChildProcess;
      try {
        started = spawn(file, args, { env, stdio: "inherit" });
      } catch (error) {
        // Some failures (ENOTDIR) are thrown at once rather than emitted.
        throw commandNotRun(file, error);
      }
      child = started;
      started.on("error", (error) => finish(() => reject(commandNotRun(file, error))));
      started.on("exit", (code, exitSignal) => {
        if (child !== started || restarting) return;
        const status = code ?? 128 + (exitSignal ? (constants.signals[exitSignal] ?? 0) : 0);
        finish(() => resolve(status));
      });
    };

    // A change of the store: if the principal's key changed, restart or signal the command.
    const check = async () => {
      const current = await run.keyProvider.current(run.principal);
      if (done || current.fingerprint === fingerprint) return;
      if (run.signal !== undefined) {
        fingerprint = current.fingerprint;
        run.note(`rekey run: key rotated (${current.fingerprint}); sending ${run.signal}`);
        child?.kill(run.signal);
        return;
      }
      run.note(`rekey run: key rotated (${current.fingerprint}); restarting the command`);
      restarting = true;
      await stopChild(child);
      restarting = false;
      if (!done) await start();
    };
    const onChange = () => {
      // After every listener of this change ran (the key provider drops its cache in one).
      setImmediate(() => {
        checking = (checking ?? Promise.resolve())
          .then(check)
          .catch((error: unknown) => run.note(`rekey run: ${(error as Error).message}`));
      });
    };
    const unwatch = run.watch(onChange);
    const unforward = run.onSignals?.((received) => child?.kill(received));
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      unwatch();
      unforward?.();
      settle();
    };
    start().catch((error: unknown) => finish(() => reject(error)));
  });
}

/** Why the system could not execute a file, in words, by errno code (others are named as is). */
const CANNOT_EXECUTE: Record<string, string> = {
  EACCES: "permission denied (not an executable file, or a directory)",
  EPERM: "operation not permitted",
  ENOEXEC: "not an executable format",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory (a part of the path is a file)",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the name is too long",
  ETXTBSY: "the file is busy (being written)",
};

/**
 * The refusal of a command that could not be started: not found (ENOENT) exits 127, anything
 * else 126, as `env` does. The message names the command (never its arguments, nor the key in
 * its environment) and the reason, without a stack.
 */
function commandNotRun(file: string, thrown: unknown): CommandNotRun {
  const code = (thrown as NodeJS.ErrnoException | null)?.code;
  const name = file.slice(0, 200);
  if (code === "ENOENT") {
    return new CommandNotRun(
      new RekeyError("INVALID_INPUT", `Command not found: ${name}`, {
        hint: "Check its name, or give its path: a name without a slash is looked up in PATH.",
      }),
      EXIT_COMMAND_NOT_FOUND,
    );
  }
  const reason =
    (code === undefined ? undefined : CANNOT_EXECUTE[code]) ??
    code ??
    (thrown instanceof Error ? thrown.message : String(thrown));
  return new CommandNotRun(
    new RekeyError("INVALID_INPUT", `Cannot execute ${name}: ${reason}`, {
      hint: "Give the path of an executable file (chmod +x, with a #! line for a script).",
    }),
    EXIT_COMMAND_NOT_EXECUTABLE,
  );
}

function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

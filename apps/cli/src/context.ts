import type { Clock, CredentialStore, Rekey } from "@rekey/core";
import type { Output, TextSink } from "./output.js";

/** The options every command accepts (`rekey --help`). */
export interface GlobalOptions {
  /** Profile name; default `REKEY_PROFILE`, then "default". */
  profile?: string | undefined;
  /** "memory", a directory, or "file:DIR"; default `REKEY_STORE`, then the file store. */
  store?: string | undefined;
  /** The faucet base URL for a new profile; default `REKEY_API_URL`. */
  url?: string | undefined;
  /** A stored principal to act as ("agent:7"); default `REKEY_AS`. */
  as?: string | undefined;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
}

/** An open store plus the core facade bound to it; `close()` releases both. */
export interface RekeySession {
  rekey: Rekey;
  store: CredentialStore;
  close(): Promise<void>;
}

/** Which standard streams are terminals. */
export interface TerminalFlags {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/**
 * Everything the CLI takes from the outside world. `bin.ts` builds the real ones; tests pass
 * buffers, flags and a real sandbox-backed `openRekey`.
 */
export interface CliDeps {
  /** The version `rekey --version` prints. */
  version: string;
  /**
   * Opens the store and core for one command.
   * @throws RekeyError STORE_UNAVAILABLE, STORE_CORRUPT, CONFIG_INVALID
   */
  openRekey(options: GlobalOptions): Promise<RekeySession>;
  stdout: TextSink;
  stderr: TextSink;
  /** All of stdin as text (only called when stdin is not a terminal). */
  readStdin(): Promise<string>;
  terminal: TerminalFlags;
  env: Record<string, string | undefined>;
  /** The user's home directory (for `~/.lightning-wallet`). */
  homeDir: string;
  /** Reads a secret on the terminal without echoing it. */
  promptSecret(message: string): Promise<string>;
  /** Asks a yes/no question on the terminal; false unless the answer is yes. */
  confirm(message: string): Promise<boolean>;
  clock: Clock;
  /** Resolves on SIGINT/SIGTERM: `rekey sandbox` runs until then. */
  waitForInterrupt(): Promise<void>;
  /**
   * Calls `handler` with each SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 this process receives
   * (instead of their default action) until the returned function is called: `rekey run`
   * passes them to its command. Absent in tests that send no signals.
   */
  onSignals?: ((handler: (signal: NodeJS.Signals) => void) => () => void) | undefined;
  /** The stream for progress bars: set only when stderr is a terminal. */
  progressStream?: NodeJS.WritableStream | undefined;
}

/** What a command implementation gets. */
export interface CommandContext {
  deps: CliDeps;
  globals: GlobalOptions;
  output: Output;
  /** True when a person can answer prompts (stdin and stderr are terminals). */
  interactive: boolean;
  /** Sets the exit code for a run that printed its result but did not fully succeed. */
  setExitCode(code: number): void;
  /** Opens a session, runs `use`, and always closes it. */
  withRekey<T>(use: (session: RekeySession) => Promise<T>): Promise<T>;
}

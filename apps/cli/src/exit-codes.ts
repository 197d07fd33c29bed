import type { ErrorCode } from "@rekey/core";

/** Success. */
export const EXIT_OK = 0;
/** Bad command line: unknown command or option, missing argument, no `--yes` without a terminal. */
export const EXIT_USAGE = 2;
/** Cancelled with Ctrl-C at a prompt: 128 + SIGINT, as a shell reports an interrupted command. */
export const EXIT_CANCELLED = 130;
/** `rekey doctor` found a problem it did not (or could not) repair. */
export const EXIT_CHECK_FAILED = 11;
/**
 * `rekey rotate --due` left a key past its scheduled rotation plus grace
 * (window closed, cooldown, unfinished rotation): a cron job or systemd timer should alert.
 */
export const EXIT_OVERDUE = 12;

/** `rekey run`: the command is not found (ENOENT), as `env`, `nohup` and shells exit. */
export const EXIT_COMMAND_NOT_FOUND = 127;
/**
 * `rekey run`: the command is found but cannot be executed (permission denied, a directory, not
 * an executable format), as `env`, `nohup` and shells exit.
 */
export const EXIT_COMMAND_NOT_EXECUTABLE = 126;

/**
 * The process exit code for each core error code. Exhaustive on purpose: a new code in
 * `@rekey/core` fails the build here until it is mapped (and documented in the README table).
 */
export const EXIT_CODES: Record<ErrorCode, number> = {
  INTERNAL: 1,
  INVALID_INPUT: 2,
  CONFIG_INVALID: 2,
  UNAUTHORIZED: 3,
  FORBIDDEN: 3,
  NOT_FOUND: 4,
  COOLDOWN_ACTIVE: 5,
  RATE_LIMITED: 5,
  UPSTREAM_UNAVAILABLE: 6,
  UPSTREAM_TIMEOUT: 6,
  UPSTREAM_INVALID_RESPONSE: 6,
  STORE_UNAVAILABLE: 7,
  // Every connection the store may use was busy: a retry in a moment will do.
  STORE_BUSY: 7,
  STORE_CORRUPT: 7,
  // The store's master key is missing or wrong: a person gives the key, then it reads again.
  STORE_LOCKED: 7,
  ROTATION_IN_PROGRESS: 8,
  IDEMPOTENCY_KEY_REUSED: 8,
  KEY_LOST: 9,
  INSUFFICIENT_BALANCE: 10,
};

/** The exit code for an error code; unknown strings (a newer core at runtime) are INTERNAL. */
export function exitCodeFor(code: string): number {
  return Object.hasOwn(EXIT_CODES, code) ? EXIT_CODES[code as ErrorCode] : EXIT_CODES.INTERNAL;
}

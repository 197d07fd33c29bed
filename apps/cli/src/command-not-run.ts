import type { RekeyError } from "@rekey/core";

/**
 * The command `rekey run` was given could not be started. {@link runCli} prints `error` like
 * any RekeyError, but exits with `exitCode` (127 not found, 126 not executable, see
 * exit-codes.ts): the codes `env`, `timeout`, `nohup` and POSIX shells use, so a script or a
 * supervisor reads them as it reads theirs, instead of rekey's usage code 2.
 */
export class CommandNotRun extends Error {
  override readonly name = "CommandNotRun";
  readonly error: RekeyError;
  readonly exitCode: number;

  constructor(error: RekeyError, exitCode: number) {
    super(error.message, { cause: error });
    this.error = error;
    this.exitCode = exitCode;
  }
}

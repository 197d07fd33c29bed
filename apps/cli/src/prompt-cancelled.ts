/**
 * The person at the terminal pressed Ctrl-C (or Ctrl-D) at a prompt: a cancel, not a bug.
 * `bin.ts` turns the prompt libraries' own errors into this; {@link runCli} prints one line
 * and exits 130 (128 + SIGINT, what a shell reports for a command stopped by Ctrl-C). Prompts
 * come before anything is changed or journaled, so nothing needs undoing.
 */
export class PromptCancelled extends Error {
  override readonly name = "PromptCancelled";
  constructor() {
    super("Cancelled: nothing was changed");
  }
}

/**
 * Whether `error` is a prompt library's report of Ctrl-C / end of input: @inquirer's
 * ExitPromptError ("User force closed the prompt with SIGINT") or node:readline/promises'
 * AbortError ("Aborted with Ctrl+C"). Throws nothing.
 */
export function isPromptInterrupt(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === "ExitPromptError" || name === "AbortError";
}

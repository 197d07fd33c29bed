import { agent, type Principal, RekeyError } from "@rekey/core";
import { z } from "zod";
import type { CommandContext } from "../context.js";

// The schemas here are built on first use: most commands (`rekey status`) parse neither, and
// every zod schema costs start-up time (bench/README.md, "Cold start").
function buildSatsSchema() {
  return z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number of sats")
    .nonnegative("must not be negative")
    .max(Number.MAX_SAFE_INTEGER, "is too large");
}
let satsSchema: ReturnType<typeof buildSatsSchema> | undefined;

/**
 * Parses a sats amount from the command line.
 * @throws RekeyError INVALID_INPUT for anything but a whole number in 0..2^53-1.
 */
export function parseSats(value: unknown, option: string): number {
  const text = typeof value === "string" ? value.trim() : "";
  satsSchema ??= buildSatsSchema();
  const parsed = /^\d+$/.test(text) ? satsSchema.safeParse(text) : satsSchema.safeParse(Number.NaN);
  if (!parsed.success) {
    throw new RekeyError(
      "INVALID_INPUT",
      `${option} ${JSON.stringify(String(value)).slice(0, 40)} ${parsed.error.issues[0]?.message ?? "is invalid"}`,
      { hint: `Pass ${option} as a whole number of sats, e.g. ${option} 1000.` },
    );
  }
  return parsed.data;
}

/**
 * The principal named by `--agent`, or undefined (the profile's active principal).
 * @throws RekeyError INVALID_INPUT for an id outside 1..2^31-1.
 */
export function parseAgentOption(value: unknown): Principal | undefined {
  if (value === undefined) return undefined;
  return agent(typeof value === "string" ? value.trim() : value);
}

// A key or recovery code is one printable token; anything else on stdin is a mistake
// (a file with several lines, binary data), refused rather than guessed at.
function buildSecretSchema() {
  return z
    .string()
    .min(1, "is empty")
    .max(1024, "is too long")
    .regex(/^[\x21-\x7e]+$/, "must be a single token of printable characters");
}
let secretSchema: ReturnType<typeof buildSecretSchema> | undefined;

/**
 * Reads a secret: all of stdin when it is piped, else a hidden prompt. Never from argv.
 * @throws RekeyError INVALID_INPUT when the input is not exactly one token.
 */
export async function readSecret(context: CommandContext, what: string): Promise<string> {
  const fromStdin = !context.deps.terminal.stdin;
  const raw = fromStdin
    ? await context.deps.readStdin()
    : await context.deps.promptSecret(`${what[0]?.toUpperCase()}${what.slice(1)}:`);
  secretSchema ??= buildSecretSchema();
  const parsed = secretSchema.safeParse(raw.trim());
  if (!parsed.success) {
    throw new RekeyError(
      "INVALID_INPUT",
      `The ${what} ${fromStdin ? "on stdin " : ""}${parsed.error.issues[0]?.message ?? "is invalid"}`,
      {
        hint: fromStdin
          ? `Pipe exactly one ${what}, e.g. rekey ... < file containing only the ${what}.`
          : `Paste the ${what} at the prompt.`,
      },
    );
  }
  return parsed.data;
}

/**
 * Asks before a change that cannot be undone. `--yes` skips the question; without a terminal
 * `--yes` is required, so a script never hangs or acts on an unseen plan.
 * @throws RekeyError INVALID_INPUT without a terminal and without `--yes`, or when declined.
 */
export async function confirmOrRefuse(
  context: CommandContext,
  question: string,
  yes: boolean,
  /** What is confirmed, and whether the command has a --dry-run to point to. */
  action: { verb: string; dryRun: boolean } = { verb: "rotate", dryRun: true },
): Promise<void> {
  if (yes) return;
  if (!context.interactive) {
    throw new RekeyError("INVALID_INPUT", `Refusing to ${action.verb} without confirmation`, {
      hint: action.dryRun
        ? "No terminal to ask on: pass --yes to confirm, or --dry-run to see the plan."
        : "No terminal to ask on: pass --yes to confirm.",
    });
  }
  if (!(await context.deps.confirm(question))) {
    throw new RekeyError("INVALID_INPUT", "Cancelled: nothing was changed", {
      ...(action.dryRun ? { hint: "Pass --dry-run to see the plan without being asked." } : {}),
    });
  }
}

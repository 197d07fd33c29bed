import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import {
  type DeliveryOutcome,
  type DeliveryStatus,
  type DeliveryTargetSpec,
  deliveryOutcomeView,
  deliveryTargetsView,
  recordPrincipalView,
} from "@rekey/core";
import type { CommandContext } from "../context.js";
import { exitCodeFor } from "../exit-codes.js";
import { type Colors, formatTable, type TimeFormat } from "../output.js";
import { parseAgentOption } from "./input.js";

/**
 * `rekey deliver add|list|remove|test|retry`: the places a principal's key is delivered to
 * after each rotation. The principal is the profile's active one, or `--agent ID`.
 */

/** The target `rekey deliver add KIND ...` describes; paths are made absolute here. */
export function targetSpecOf(
  kind: string,
  args: string[],
  options: Record<string, unknown>,
  defaults: { lightningWalletFile: string; path?: string | undefined },
): DeliveryTargetSpec {
  const text = (value: unknown) => (typeof value === "string" ? value : undefined);
  const timeoutMs = options.timeout === undefined ? undefined : Number(options.timeout) * 1000;
  switch (kind) {
    case "lightning-wallet":
      return { kind, path: resolve(args[0] ?? defaults.lightningWalletFile) };
    case "dotenv":
      return {
        kind,
        path: resolve(args[0] ?? ""),
        variable: text(options.var) ?? "LIGHTNING_WALLET_API_KEY",
      };
    case "exec": {
      const [command = "", ...rest] = args;
      return {
        kind,
        command: [commandPath(command, defaults.path), ...rest],
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      };
    }
    case "store": {
      const location = args[0] ?? "";
      if (location.includes("://")) return { kind, location };
      // `file:DIR` names DIR, as --store and REKEY_STORE take it: resolved as it stands it
      // would be a directory called `file:DIR` under this one.
      const dir = location.startsWith("file:") ? location.slice("file:".length) : location;
      return { kind, location: dir === "" ? "" : resolve(dir) };
    }
    case "webhook":
      return {
        kind,
        url: args[0] ?? "",
        secretFile: resolve(text(options.secretFile) ?? ""),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      };
    default:
      // Core refuses it with the list of kinds.
      return { kind } as unknown as DeliveryTargetSpec;
  }
}

/**
 * The absolute path of the command a user typed, fixed when the target is added: a path with a
 * slash against this directory, a bare name on this PATH. A later delivery runs from another
 * directory and PATH (cron's, rekey-http's), which would find another program or none. A name
 * found nowhere is left as typed, for core to refuse.
 */
function commandPath(command: string, path: string | undefined): string {
  if (command === "" || command.includes("/")) return command === "" ? "" : resolve(command);
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "" || !isAbsolute(dir)) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here: the next directory.
    }
  }
  return command;
}

/** Sets a non-zero exit code when a delivery failed, after its result was printed. */
function exitOnFailure(context: CommandContext, outcomes: (DeliveryOutcome | undefined)[]): void {
  const failed = outcomes.find((outcome) => outcome?.status === "failed");
  if (failed?.error) context.setExitCode(exitCodeFor(failed.error.code));
}

export async function runDeliverAdd(
  context: CommandContext,
  kind: string,
  args: string[],
  options: Record<string, unknown>,
): Promise<void> {
  const principal = parseAgentOption(options.agent);
  const spec = targetSpecOf(kind, args, options, {
    lightningWalletFile: context.deps.env.LIGHTNING_WALLET_HOME
      ? `${context.deps.env.LIGHTNING_WALLET_HOME}/credentials.json`
      : `${context.deps.homeDir}/.lightning-wallet/credentials.json`,
    path: context.deps.env.PATH,
  });
  const added = await context.withRekey(({ rekey }) => rekey.addDeliveryTarget(spec, principal));
  const payload = {
    ...recordPrincipalView(added.principal),
    target: added.target,
    ...(added.outcome === undefined ? {} : { delivery: deliveryOutcomeView(added.outcome) }),
  };
  context.output.result("deliver add", payload, () => {
    const { colors } = context.output;
    const head = `${colors.green("added")} ${added.target} for ${added.principal}`;
    return added.outcome ? `${head}\n${outcomeLines([added.outcome], colors)}` : head;
  });
  exitOnFailure(context, [added.outcome]);
}

export async function runDeliverList(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const principal = parseAgentOption(options.agent);
  const listed = await context.withRekey(({ rekey }) => rekey.listDeliveryTargets(principal));
  context.output.result("deliver list", deliveryTargetsView(listed), () =>
    listed.targets.length === 0
      ? `no delivery targets for ${listed.principal} (add one with rekey deliver add)`
      : deliveryTable(listed.targets, context.output.colors, context.output.time),
  );
}

export async function runDeliverRemove(
  context: CommandContext,
  id: string,
  options: Record<string, unknown>,
): Promise<void> {
  const principal = parseAgentOption(options.agent);
  const removed = await context.withRekey(({ rekey }) => rekey.removeDeliveryTarget(id, principal));
  context.output.result(
    "deliver remove",
    { ...recordPrincipalView(removed.principal), target: removed.target },
    () => `${context.output.colors.green("removed")} ${removed.target} of ${removed.principal}`,
  );
}

/** `test ID` delivers the current key to one target now; `retry [ID]` to the stale ones. */
export async function runDeliverNow(
  context: CommandContext,
  command: "test" | "retry",
  id: string | undefined,
  options: Record<string, unknown>,
): Promise<void> {
  const principal = parseAgentOption(options.agent);
  const outcomes = await context.withRekey(({ rekey }) =>
    rekey.deliver({
      ...(principal ? { principal } : {}),
      ...(id === undefined ? {} : { only: id }),
      force: command === "test",
    }),
  );
  context.output.result(
    `deliver ${command}`,
    { deliveries: outcomes.map(deliveryOutcomeView) },
    () =>
      outcomes.length === 0 ? "no delivery targets" : outcomeLines(outcomes, context.output.colors),
  );
  exitOnFailure(context, outcomes);
}

/** One line per delivery outcome, for rotate and deliver. */
export function outcomeLines(outcomes: DeliveryOutcome[], colors: Colors): string {
  return outcomes
    .map((outcome) => {
      const status =
        outcome.status === "delivered" || outcome.status === "current"
          ? colors.green(outcome.status)
          : outcome.status === "failed"
            ? colors.red("FAILED")
            : colors.yellow(outcome.status);
      const why = outcome.error ? `: ${outcome.error.message} (${outcome.error.code})` : "";
      return `  ${status} ${outcome.target} ${outcome.fingerprint} ${outcome.description}${why}`;
    })
    .join("\n");
}

/** The targets of a principal as a table, for deliver list and status. */
export function deliveryTable(targets: DeliveryStatus[], colors: Colors, time: TimeFormat): string {
  return formatTable(
    ["target", "state", "holds", "last attempt", "where"],
    targets.map((target) => [
      target.target,
      target.state === "current"
        ? colors.green("current")
        : target.state === "failing"
          ? colors.red(`failing: ${target.error?.code ?? ""}`)
          : colors.yellow("stale"),
      target.deliveredFingerprint ?? "-",
      target.at === undefined ? "-" : time(target.at),
      target.description,
    ]),
  );
}

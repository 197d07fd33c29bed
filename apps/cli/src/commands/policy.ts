import {
  describePolicy,
  listRotationPolicies,
  type PolicyScope,
  type PolicyStatus,
  type PolicyTarget,
  policyStatusView,
  RekeyError,
  setRotationPolicy,
} from "@rekey/core";
import type { CommandContext, RekeySession } from "../context.js";
import { formatTable, type Output } from "../output.js";
import { parseAgentOption } from "./input.js";

/**
 * `rekey policy set`: the rotation policy of the active principal (or `--as`), one agent, or
 * every stored agent. Core parses and checks it; nothing is written unless every one is valid.
 * @throws RekeyError INVALID_INPUT (bad duration or window, max-age within the cooldown),
 *   NOT_FOUND, STORE_*
 */
export async function runPolicySet(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const maxAge = options.maxAge;
  if (typeof maxAge !== "string") {
    throw new RekeyError("INVALID_INPUT", "rekey policy set needs --max-age", {
      hint: "For example: rekey policy set --all-agents --max-age 30d --window 'Mon-Fri 02:00-04:00 Europe/Berlin'",
    });
  }
  const input = {
    maxAge,
    window: optionalText(options.window),
    jitter: optionalText(options.jitter),
    grace: optionalText(options.grace),
  };
  const statuses = await context.withRekey(async (session) =>
    setRotationPolicy(await scopeOf(context, session), targetOf(options), input),
  );
  printPolicies(context.output, "policy", statuses, "set");
}

/**
 * `rekey policy clear`: removes the policy of the same targets as `set`.
 * @throws RekeyError NOT_FOUND, STORE_*
 */
export async function runPolicyClear(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  await context.withRekey(async (session) =>
    setRotationPolicy(await scopeOf(context, session), targetOf(options), undefined),
  );
  context.output.result("policy", { action: "clear", policies: [] }, () => "Policy removed.");
}

/**
 * `rekey policy list`: every principal of the profile with a policy, its next rotation, whether
 * its window is open and whether it is overdue.
 * @throws RekeyError STORE_*, INVALID_INPUT (a stored window this Node cannot read)
 */
export async function runPolicyList(context: CommandContext): Promise<void> {
  const statuses = await context.withRekey(async (session) =>
    listRotationPolicies(await scopeOf(context, session)),
  );
  printPolicies(context.output, "policy", statuses, "list");
}

function printPolicies(
  output: Output,
  command: string,
  statuses: PolicyStatus[],
  action: "set" | "list",
): void {
  output.result(command, { action, policies: statuses.map(policyStatusView) }, () => {
    if (statuses.length === 0) return "No rotation policies (set one with rekey policy set).";
    const { colors, time } = output;
    return formatTable(
      ["principal", "key", "policy", "next rotation", "window", "state"],
      statuses.map((status) => [
        status.label,
        status.fingerprint ?? "-",
        describePolicy(status.policy),
        status.due?.nextRotationAt === undefined ? "-" : time(status.due.nextRotationAt),
        status.due === undefined ? "-" : status.due.inWindow ? "open" : "closed",
        status.due === undefined
          ? colors.yellow("no key")
          : status.due.overdue
            ? colors.red("OVERDUE")
            : status.due.due
              ? colors.yellow("due")
              : colors.green("ok"),
      ]),
    );
  });
}

async function scopeOf(context: CommandContext, session: RekeySession): Promise<PolicyScope> {
  const actAs = context.globals.as ?? (context.deps.env.REKEY_AS || undefined);
  return {
    store: session.store,
    profileName: session.rekey.profileName,
    baseUrl: await session.rekey.baseUrl(),
    actAs,
    clock: context.deps.clock,
  };
}

function targetOf(options: Record<string, unknown>): PolicyTarget {
  if (options.allAgents === true) return { kind: "all-agents" };
  const agent = parseAgentOption(options.agent);
  return agent?.kind === "agent" ? { kind: "agent", agentId: agent.agentId } : { kind: "active" };
}

function optionalText(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

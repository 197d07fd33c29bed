import {
  type AgentRotationOutcome,
  type AgentStatus,
  agent,
  agentRotationOutcomeView,
  COOLDOWN_MINUTES,
  DEFAULT_AGENT_ROTATION_CONCURRENCY,
  formatDuration,
  isRekeyError,
  MAX_AGENT_ROTATION_CONCURRENCY,
  planAgentRotation,
  principalLabel,
  principalView,
  RekeyError,
  type RotationPlan,
  type RotationResult,
  rotateAgents,
} from "@rekey/core";
import type { CommandContext } from "../context.js";
import { exitCodeFor } from "../exit-codes.js";
import { type Colors, formatTable, type Output } from "../output.js";
import { outcomeLines } from "./deliver.js";
import { confirmOrRefuse, parseAgentOption } from "./input.js";
import { startProgress } from "./progress.js";
import { runRotateDue } from "./rotate-due.js";
import { planPayload, rotationPayload } from "./rotation-view.js";

interface RotateFlags {
  dryRun: boolean;
  yes: boolean;
  force: boolean;
  reveal: boolean;
}

/**
 * `rekey rotate`: one key (the active principal or `--agent ID`) or `--all-agents`. Shows the
 * plan and asks on a terminal (`--yes` skips both, and is required without one), then rotates
 * through core.
 * @throws RekeyError INVALID_INPUT (bad id, no --yes without a terminal), COOLDOWN_ACTIVE,
 *   NOT_FOUND, FORBIDDEN, UNAUTHORIZED, ROTATION_IN_PROGRESS, KEY_LOST, STORE_*, UPSTREAM_*
 */
export async function runRotate(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const flags: RotateFlags = {
    dryRun: options.dryRun === true,
    yes: options.yes === true,
    force: options.force === true,
    reveal: options.reveal === true,
  };
  if (options.due === true) {
    await runRotateDue(context, {
      dryRun: flags.dryRun,
      concurrency: parseConcurrency(options.concurrency),
    });
    return;
  }
  if (options.allAgents === true) {
    await rotateAllAgents(context, flags, parseConcurrency(options.concurrency));
    return;
  }
  await rotateOne(context, flags, parseAgentOption(options.agent));
}

async function rotateOne(
  context: CommandContext,
  flags: RotateFlags,
  target: ReturnType<typeof parseAgentOption>,
): Promise<void> {
  const { output } = context;
  await context.withRekey(async ({ rekey }) => {
    // With --yes there is nothing to ask, so no plan: the rotation reads the key itself before
    // waiting on anything, and joins another process's rotation of that key if one finishes
    // meanwhile. A plan made first would wait for that rotation and then refuse its cooldown.
    let expectedFingerprint: string | undefined;
    if (flags.dryRun || !flags.yes) {
      const plan = await rekey.rotateKey({ ...(target ? { target } : {}), dryRun: true });
      if (flags.dryRun) {
        output.result("rotate", planPayload(plan), () => renderPlan(plan, flags, output));
        return;
      }
      // A rotation inside the cooldown is refused by core (COOLDOWN_ACTIVE); do not ask first.
      if (!plan.blockedByCooldown || flags.force) {
        output.note(renderPlan(plan, flags, output));
        await confirmOrRefuse(context, `Rotate ${keyOwner(plan)} key now?`, flags.yes);
      }
      // The key the user said yes to: if another process rotates it while they answer, that
      // rotation is the answer, not a second one of the new key.
      if (plan.currentFingerprint !== "none") expectedFingerprint = plan.currentFingerprint;
    }
    const result = await rekey
      .rotateKey({
        ...(target ? { target } : {}),
        force: flags.force,
        reveal: flags.reveal,
        ...(expectedFingerprint === undefined ? {} : { expectedFingerprint }),
      })
      .catch((error: unknown) => {
        throw isRekeyError(error, "COOLDOWN_ACTIVE") ? cooldownRefusal(error) : error;
      });
    output.result("rotate", rotationPayload(result), () => renderResult(result, output));
  });
}

/**
 * Core's COOLDOWN_ACTIVE in the CLI's words: whose key, until when, and the flag that
 * overrides it. The facts (details, code) stay as core computed them.
 */
function cooldownRefusal(error: RekeyError): RekeyError {
  const principal = error.details.principal;
  const owner = typeof principal === "string" ? principal : "this principal";
  return new RekeyError(
    "COOLDOWN_ACTIVE",
    `${owner.charAt(0).toUpperCase()}${owner.slice(1)} was rotated recently and is inside its withdrawal cooldown`,
    {
      hint: "Rotating again now restarts the withdrawal block. Wait for it to end, or pass --force to rotate anyway.",
      details: error.details,
      cause: error,
    },
  );
}

/** "the operator's", "agent 7's": whose key a sentence is about. */
function keyOwner(plan: RotationPlan): string {
  return plan.principal.kind === "operator" ? "the operator's" : `${plan.label}'s`;
}

function renderPlan(plan: RotationPlan, flags: RotateFlags, output: Output): string {
  const { colors, time } = output;
  const lines = [
    `${colors.bold("Plan")}: rotate ${keyOwner(plan)} key ${plan.currentFingerprint} (${plan.action})`,
    "  The old key stops working at once; the new key is stored before it is used.",
    `  Withdrawals by ${plan.principal.kind === "operator" ? "the operator" : plan.label} are blocked for ${plan.cooldownMinutes} minutes (until about ${time(plan.cooldownWouldEndAt)}).`,
  ];
  if (plan.currentCooldownUntil !== undefined) {
    lines.push(
      colors.yellow(
        `  Already inside a cooldown until ${time(plan.currentCooldownUntil)}: ${
          flags.force ? "--force restarts it" : "a rotation would be refused without --force"
        }.`,
      ),
    );
  }
  if (flags.dryRun) lines.push(colors.dim("  Dry run: nothing was changed."));
  return lines.join("\n");
}

function renderResult(result: RotationResult, output: Output): string {
  const { colors, time } = output;
  const lines = [
    `${colors.green("rotated")} ${result.label}: ${result.oldFingerprint} -> ${result.newFingerprint}${result.verified ? " (verified)" : colors.yellow(" (NOT verified: run rekey doctor)")}`,
    `  withdrawals blocked until ${time(result.cooldownUntil)} (${result.cooldownMinutes} min)`,
  ];
  if (result.shared)
    lines.push(colors.dim("  (another process did this rotation; its result is shown)"));
  if (result.deliveries !== undefined && result.deliveries.length > 0) {
    lines.push("  deliveries:", outcomeLines(result.deliveries, colors).replace(/^/gm, "  "));
  }
  if (result.apiKey !== undefined) lines.push(`  new key: ${result.apiKey}`);
  return lines.join("\n");
}

async function rotateAllAgents(
  context: CommandContext,
  flags: RotateFlags,
  concurrency: number,
): Promise<void> {
  const { output } = context;
  await context.withRekey(async ({ rekey }) => {
    // Which agents to rotate and which to skip (inside a cooldown) is core's policy; this
    // command shows the plan, asks, draws progress and prints the outcomes.
    const plan = await planAgentRotation(rekey, { force: flags.force });
    const { agents, toRotate } = plan;

    if (flags.dryRun) {
      output.result(
        "rotate",
        {
          dry_run: true,
          all_agents: true,
          agents: agents.map((entry) => ({
            principal: principalView(agent(entry.id)),
            label: principalLabel(agent(entry.id)),
            agent_id: entry.id,
            name: entry.name,
            fingerprint: entry.fingerprint,
            action: toRotate.includes(entry) ? "rotate" : "skip_already_rotated",
            cooldown_until: entry.cooldownUntil,
          })),
        },
        () => renderAllAgentsPlan(agents, toRotate, output.colors, true),
      );
      return;
    }
    // --yes asks nothing, so the plan it would ask about is not printed either.
    if (!flags.yes) output.note(renderAllAgentsPlan(agents, toRotate, output.colors, false));
    if (toRotate.length > 0) {
      await confirmOrRefuse(
        context,
        `Rotate ${toRotate.length} agent key${toRotate.length === 1 ? "" : "s"} now?`,
        flags.yes,
      );
    }

    const progress = await startProgress(context, toRotate.length, "rotating agents");
    let outcomes: AgentRotationOutcome[];
    try {
      outcomes = await rotateAgents(rekey, {
        plan,
        force: flags.force,
        reveal: flags.reveal,
        concurrency,
        onRotated: () => progress.tick(),
      });
    } finally {
      progress.stop();
    }
    output.result(
      "rotate",
      {
        dry_run: false,
        all_agents: true,
        results: outcomes.map((outcome) =>
          agentRotationOutcomeView(outcome, { revealKey: flags.reveal }),
        ),
      },
      () => renderSummary(outcomes, flags.reveal, output),
    );
    const firstFailure = outcomes.find((outcome) => outcome.result === "failed");
    if (firstFailure?.error) context.setExitCode(exitCodeFor(firstFailure.error.code));
  });
}

function renderAllAgentsPlan(
  agents: AgentStatus[],
  toRotate: AgentStatus[],
  colors: Colors,
  dryRun: boolean,
): string {
  if (agents.length === 0) return "No agents to rotate.";
  const skippedCount = agents.length - toRotate.length;
  const lines = [
    `${colors.bold("Plan")}: rotate ${toRotate.length} of ${agents.length} agent keys; each rotated agent's withdrawals are blocked for ${COOLDOWN_MINUTES.agent} minutes.`,
  ];
  if (skippedCount > 0) {
    lines.push(
      colors.yellow(
        `  ${skippedCount} already rotated (inside a cooldown) will be skipped; --force rotates them again.`,
      ),
    );
  }
  lines.push(
    formatTable(
      ["agent", "name", "key", "action"],
      agents.map((entry) => [
        String(entry.id),
        entry.name,
        entry.fingerprint ?? "-",
        toRotate.includes(entry)
          ? "rotate"
          : `skip: already rotated (cooldown ${formatDuration(entry.cooldownRemainingSeconds)} left)`,
      ]),
    ),
  );
  if (dryRun) lines.push(colors.dim("Dry run: nothing was changed."));
  return lines.join("\n");
}

function renderSummary(outcomes: AgentRotationOutcome[], reveal: boolean, output: Output): string {
  const { colors, time } = output;
  if (outcomes.length === 0) return "No agents.";
  const resultText = (outcome: AgentRotationOutcome) =>
    outcome.result === "rotated"
      ? colors.green("rotated")
      : outcome.result === "already_rotated"
        ? colors.yellow("already rotated")
        : colors.red(`failed: ${outcome.error?.code ?? "INTERNAL"}`);
  const headers = ["agent", "name", "result", "new fingerprint", "cooldown until"];
  if (reveal) headers.push("new key");
  const rows = outcomes.map((outcome) => {
    const row = [
      String(outcome.agentId),
      outcome.name,
      resultText(outcome),
      outcome.result === "rotated" ? (outcome.newFingerprint ?? "-") : "-",
      outcome.cooldownUntil === undefined ? "-" : time(outcome.cooldownUntil),
    ];
    if (reveal) row.push(outcome.apiKey ?? "-");
    return row;
  });
  const failures = outcomes.filter((outcome) => outcome.result === "failed");
  const lines = [formatTable(headers, rows)];
  for (const failure of failures) {
    lines.push(colors.red(`agent ${failure.agentId}: ${failure.error?.message ?? "failed"}`));
  }
  if (failures.length > 0) {
    lines.push("Run the same command again: agents already rotated are skipped.");
  }
  const failedDeliveries = outcomes.flatMap((outcome) =>
    (outcome.deliveries ?? [])
      .filter((delivery) => delivery.status === "failed")
      .map((delivery) => ({ agentId: outcome.agentId, delivery })),
  );
  for (const { agentId, delivery } of failedDeliveries) {
    lines.push(
      colors.red(
        `agent ${agentId}: delivery to ${delivery.target} failed: ${delivery.error?.message ?? ""} (rekey deliver retry --agent ${agentId})`,
      ),
    );
  }
  return lines.join("\n");
}

function parseConcurrency(value: unknown): number {
  const parsed = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > MAX_AGENT_ROTATION_CONCURRENCY) {
    throw new RekeyError(
      "INVALID_INPUT",
      `--concurrency ${String(value)} must be 1 to ${MAX_AGENT_ROTATION_CONCURRENCY}`,
      { hint: `The default, ${DEFAULT_AGENT_ROTATION_CONCURRENCY}, is gentle on the faucet.` },
    );
  }
  return parsed;
}

import { type DueOutcome, type DueReport, dueReportView, rotateDue } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { EXIT_OVERDUE, exitCodeFor } from "../exit-codes.js";
import { formatTable, type Output } from "../output.js";
import { outcomeLines } from "./deliver.js";
import { startProgress } from "./progress.js";

/**
 * `rekey rotate --due [--dry-run]`: rotates every principal of the profile whose policy says it
 * is due and whose window is open (core's `rotateDue`). Meant for cron and systemd timers: it
 * asks nothing, and its exit code says what a person should look at: 0 all well, a failure's
 * code (as `--all-agents`; a delivery target that could not take the new key counts), else
 * EXIT_OVERDUE when a key is left past its max-age plus grace.
 * @throws RekeyError STORE_*, CONFIG_INVALID (the run itself; per-principal failures are reported)
 */
export async function runRotateDue(
  context: CommandContext,
  options: { dryRun: boolean; concurrency: number },
): Promise<void> {
  const { output } = context;
  const report = await context.withRekey(async ({ rekey, store }) => {
    let progress = { tick() {}, stop() {} };
    try {
      return await rotateDue({
        rekey,
        store,
        clock: context.deps.clock,
        actAs: context.globals.as ?? (context.deps.env.REKEY_AS || undefined),
        dryRun: options.dryRun,
        concurrency: options.concurrency,
        onPlan: async (count) => {
          progress = await startProgress(context, count, "rotating due keys");
        },
        onRotated: () => progress.tick(),
      });
    } finally {
      progress.stop();
    }
  });
  output.result("rotate", dueReportView(report), () => renderDueReport(report, output));
  // A rotation whose key a target could not take leaves that consumer on the dead key: as
  // loud, for cron, as a rotation that failed.
  const failure =
    report.results.find((outcome) => outcome.result === "failed") ??
    report.results
      .flatMap((outcome) => outcome.deliveries ?? [])
      .find((delivery) => delivery.status === "failed");
  if (failure?.error) context.setExitCode(exitCodeFor(failure.error.code));
  else if (report.results.some((outcome) => outcome.overdue)) context.setExitCode(EXIT_OVERDUE);
}

const RESULT_WORDS: Record<DueOutcome["result"], string> = {
  rotated: "rotated",
  shared: "rotated by another process",
  would_rotate: "would rotate",
  not_due: "not due",
  skipped_cooldown: "skipped: in cooldown",
  skipped_unfinished: "skipped: unfinished rotation (run rekey doctor --repair)",
  no_key: "no key",
  failed: "failed",
};

function renderDueReport(report: DueReport, output: Output): string {
  const { colors, time } = output;
  if (report.results.length === 0) {
    return "No rotation policies in this profile (set one with rekey policy set).";
  }
  const word = (outcome: DueOutcome) => {
    const text =
      outcome.result === "failed"
        ? `failed: ${outcome.error?.code ?? "INTERNAL"}`
        : RESULT_WORDS[outcome.result];
    if (outcome.result === "rotated" || outcome.result === "shared") return colors.green(text);
    if (outcome.result === "failed") return colors.red(text);
    return outcome.overdue ? colors.red(`${text} (OVERDUE)`) : text;
  };
  const lines = [
    formatTable(
      ["principal", "result", "key", "next rotation"],
      report.results.map((outcome) => [
        outcome.label,
        word(outcome),
        outcome.newFingerprint ?? outcome.oldFingerprint ?? "-",
        outcome.nextRotationAt === undefined ? "-" : time(outcome.nextRotationAt),
      ]),
    ),
  ];
  for (const outcome of report.results) {
    if (outcome.error) lines.push(colors.red(`${outcome.label}: ${outcome.error.message}`));
    if (outcome.deliveries !== undefined && outcome.deliveries.length > 0) {
      lines.push(
        `${outcome.label} deliveries:`,
        outcomeLines(outcome.deliveries, colors).replace(/^/gm, "  "),
      );
    }
  }
  if (report.dryRun) lines.push(colors.dim("Dry run: nothing was changed."));
  return lines.join("\n");
}

import type { HealthReport, KeyStatus, PendingResolution } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { EXIT_CHECK_FAILED } from "../exit-codes.js";
import { type Colors, formatFields } from "../output.js";

/**
 * `rekey doctor [--repair]`: checks the store (file modes included), the faucet URL, and
 * unfinished rotations; `--repair` resolves them. Exits 11 when a problem remains.
 * @throws RekeyError STORE_*, CONFIG_INVALID, KEY_LOST (a rotation whose key is gone)
 */
export async function runDoctor(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const repair = options.repair === true;
  const { health, status, resolutions } = await context.withRekey(async ({ rekey, store }) => {
    // The store's own repairs (temp files of interrupted writes); a failure shows in health.
    if (repair) await store.checkWritable().catch(() => {});
    const resolutions = repair ? await rekey.resolvePending() : undefined;
    const active = await rekey.activePrincipal();
    const status = active === undefined ? undefined : await rekey.status(active);
    return { health: await rekey.health(), status, resolutions };
  });
  const pending = status?.pendingRotation;
  const ok = health.ok && pending === undefined;
  context.output.result(
    "doctor",
    {
      ok,
      health,
      ...(pending === undefined ? {} : { pendingRotation: { label: status?.label, ...pending } }),
      ...(resolutions === undefined ? {} : { resolutions }),
    },
    () => renderDoctor(health, status, resolutions, ok, context.output.colors),
  );
  if (!ok) context.setExitCode(EXIT_CHECK_FAILED);
}

function renderDoctor(
  health: HealthReport,
  status: KeyStatus | undefined,
  resolutions: PendingResolution[] | undefined,
  ok: boolean,
  colors: Colors,
): string {
  const check = (passed: boolean) => (passed ? colors.green("ok") : colors.red("FAILED"));
  const lines = [
    formatFields([
      ["store", `${check(health.store.ok)} ${health.store.kind} ${health.store.location}`],
      ...health.store.problems.map((problem): [string, string] => ["  problem", problem]),
      [
        "faucet",
        `${check(health.upstream.ok)} ${health.upstream.baseUrl}${health.upstream.error ? ` (${health.upstream.error})` : ""}`,
      ],
      [
        "unfinished rotation",
        status?.pendingRotation === undefined
          ? "none"
          : colors.red(
              `${status.label}: ${status.pendingRotation.phase} since ${status.pendingRotation.startedAt} (rekey doctor --repair)`,
            ),
      ],
    ]),
  ];
  if (resolutions !== undefined) {
    lines.push(
      resolutions.length === 0
        ? "repair: nothing to resolve"
        : resolutions
            .map(
              (resolution) =>
                `repair: ${resolution.label} ${resolution.outcome}${resolution.newFingerprint ? ` (${resolution.newFingerprint})` : ""}`,
            )
            .join("\n"),
    );
  }
  lines.push(ok ? colors.green("all checks passed") : colors.red("problems found"));
  return lines.join("\n");
}

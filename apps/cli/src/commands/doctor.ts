import {
  type DeliveryStatus,
  type DoctorReportView,
  deliveryTargetsView,
  type HealthReport,
  healthView,
  isRekeyError,
  type KeyCheck,
  type KeyStatus,
  keyCheckView,
  listRotationPolicies,
  type PendingResolution,
  type PolicyStatus,
  pendingResolutionView,
  policyStatusView,
  principalView,
  type RescuedKey,
  rescuedKeyView,
} from "@rekey/core";
import type { CommandContext } from "../context.js";
import { EXIT_CHECK_FAILED } from "../exit-codes.js";
import { type Colors, formatFields, type TimeFormat } from "../output.js";
import { rescuedKeyLine } from "./status.js";

/**
 * `rekey doctor [--repair]`: checks the store (file modes and free space included), the
 * faucet URL, unfinished rotations, and every key the profile's principals hold (the faucet must
 * accept it); `--repair` resolves unfinished rotations and settles keys the migration kept beside a
 * record, and finishes due deliveries; a delivery target that does not hold the current key is
 * a problem, and so is a key past its scheduled rotation plus grace (`rekey policy`). Exits 11
 * when a problem remains.
 * @throws RekeyError STORE_*, CONFIG_INVALID, KEY_LOST (a rotation whose key is gone)
 */
export async function runDoctor(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const repair = options.repair === true;
  const { health, status, resolutions, settled, keys, deliveries, overdue, rescued } =
    await context.withRekey(async ({ rekey, store }) => {
      // The store's own repairs (temp files of interrupted writes); a failure shows in health.
      if (repair) await store.checkWritable().catch(() => {});
      const resolutions = repair ? await rekey.resolvePending() : undefined;
      const settled = repair ? await rekey.settleAlternates() : undefined;
      const active = await rekey.activePrincipal();
      // Without a usable key the profile's own record is still shown: a recorded loss lives there.
      const status =
        active === undefined
          ? await rekey.status().catch((error: unknown) => {
              if (isRekeyError(error, "NOT_FOUND")) return undefined;
              throw error;
            })
          : await rekey.status(active);
      const health = await rekey.health();
      // Asking the faucet about each key needs the faucet: skip it when it is unreachable.
      const keys = health.upstream.ok ? await rekey.checkKeys() : [];
      if (repair) await rekey.finishDeliveries();
      const deliveries = await rekey.deliveryReport();
      const policies = await listRotationPolicies({
        store,
        profileName: rekey.profileName,
        baseUrl: await rekey.baseUrl(),
        actAs: context.globals.as ?? (context.deps.env.REKEY_AS || undefined),
        clock: context.deps.clock,
      });
      const overdue = policies.filter((policy) => policy.due?.overdue === true);
      const rescued = await rekey.rescuedKeys();
      return { health, status, resolutions, settled, keys, deliveries, overdue, rescued };
    });
  const pending = status?.pendingRotation;
  const keyProblems = keys.filter((check) => check.alive === false || !check.current);
  const keyLost = status?.keyLost;
  // A target that does not hold the current key breaks whatever reads it: a problem.
  const staleTargets = deliveries.flatMap((record) =>
    record.targets
      .filter((target) => target.state !== "current")
      .map((target) => ({ principal: record.principal, ...target })),
  );
  const ok =
    health.ok &&
    (health.store.encryption?.underOtherKeys ?? 0) === 0 &&
    pending === undefined &&
    keyLost === undefined &&
    keyProblems.length === 0 &&
    staleTargets.length === 0 &&
    overdue.length === 0 &&
    // A key only a rescue file holds is one lost file away from gone.
    rescued.length === 0;
  context.output.result(
    "doctor",
    doctorPayload({
      ok,
      health,
      status,
      keys,
      deliveries,
      overdue,
      resolutions,
      settled,
      rescued,
    }),
    () =>
      renderDoctor(
        health,
        status,
        resolutions,
        settled,
        keys,
        staleTargets,
        overdue,
        rescued,
        ok,
        context.output.colors,
        context.output.time,
      ),
  );
  if (!ok) context.setExitCode(EXIT_CHECK_FAILED);
}

function renderDoctor(
  health: HealthReport,
  status: KeyStatus | undefined,
  resolutions: PendingResolution[] | undefined,
  settled: KeyCheck[] | undefined,
  keys: KeyCheck[],
  staleTargets: (DeliveryStatus & { principal: string })[],
  overdue: PolicyStatus[],
  rescued: RescuedKey[],
  ok: boolean,
  colors: Colors,
  time: TimeFormat,
): string {
  const check = (passed: boolean) => (passed ? colors.green("ok") : colors.red("FAILED"));
  const lines = [
    formatFields([
      ["store", `${check(health.store.ok)} ${health.store.kind} ${health.store.location}`],
      ...health.store.problems.map((problem): [string, string] => ["  problem", problem]),
      ...encryptionLine(health, check),
      [
        "faucet",
        `${check(health.upstream.ok)} ${health.upstream.baseUrl}${health.upstream.error ? ` (${health.upstream.error})` : ""}`,
      ],
      [
        "unfinished rotation",
        status?.pendingRotation === undefined
          ? "none"
          : colors.red(
              `${status.label}: ${status.pendingRotation.phase} since ${time(status.pendingRotation.startedAt)} (rekey doctor --repair)`,
            ),
      ],
      [
        "lost key",
        status?.keyLost === undefined
          ? "none"
          : colors.red(
              `${status.label}: ${status.keyLost.oldFingerprint} lost at ${time(status.keyLost.lostAt)} (KEY_LOST). ${status.keyLost.recovery}`,
            ),
      ],
      ...keys.map((check): [string, string] => [`key ${check.principal}`, keyLine(check, colors)]),
      ...staleTargets.map((target): [string, string] => [
        `delivery ${target.principal} ${target.target}`,
        colors.red(
          `${target.state}: holds ${target.deliveredFingerprint ?? "nothing"}${target.error ? ` (${target.error.message})` : ""} (rekey deliver retry)`,
        ),
      ]),
      ...rescued.map((key): [string, string] => ["rescued key", rescuedKeyLine(key, colors, time)]),
      ...overdue.map((policy): [string, string] => [
        `overdue ${policy.principal}`,
        colors.red(
          `${policy.fingerprint ?? "-"} was due at ${time(policy.due?.dueAt ?? "")} (rekey rotate --due, or check its window)`,
        ),
      ]),
    ]),
  ];
  if (settled !== undefined && settled.length > 0) {
    lines.push(
      settled
        .map(
          (check) =>
            `repair: ${check.principal} ${check.fingerprint} ${check.current ? "adopted (the faucet accepts it)" : "dropped (the faucet rejects it)"}`,
        )
        .join("\n"),
    );
  }
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

function keyLine(check: KeyCheck, colors: Colors): string {
  const which = check.current
    ? check.fingerprint
    : `${check.fingerprint} (kept beside it by the migration)`;
  if (check.alive === true && check.current) return `${colors.green("ok")} ${which}`;
  if (check.alive === true)
    return colors.red(`${which} works too: rekey doctor --repair settles it`);
  if (check.alive === false) {
    return colors.red(
      `${which} is rejected by the faucet${check.current ? " (rotated elsewhere? log in its current key, or recover)" : ": rekey doctor --repair drops it"}`,
    );
  }
  return colors.yellow(`${which} not checked: ${check.error ?? "the faucet did not answer"}`);
}

/** The `keys at rest` line: sealed or not, and under which master key (never the key). */
function encryptionLine(
  health: HealthReport,
  check: (passed: boolean) => string,
): [string, string][] {
  const encryption = health.store.encryption;
  if (encryption === undefined) return [];
  const key =
    encryption.keyId === undefined
      ? ""
      : ` (master key ${encryption.keyId} from ${encryption.keySource ?? "?"})`;
  const lines: [string, string][] = [
    [
      "keys at rest",
      encryption.state === "encrypted"
        ? `${check(true)} every key encrypted${key}`
        : `${check(false)} ${encryption.clearKeys} key(s) in clear${key}`,
    ],
  ];
  // A configured key the store was not sealed with (a typo, another store's variable) would
  // silently become the only key that opens it at the next write: say so while both open it.
  const others = encryption.underOtherKeys ?? 0;
  if (others > 0) {
    lines.push([
      "master key",
      `${check(false)} ${others} key(s) sealed under another master key than ${encryption.keyId ?? "?"}: the next write seals them under it, and then only it opens them. If ${encryption.keySource ?? "it"} is not the key you mean to keep, unset it before anything writes; to move on purpose, run \`rekey store rekey-master --new-key env:VARIABLE\` (or file:PATH).`,
    ]);
  }
  return lines;
}

/** Doctor's `--json`: core's vocabulary (`doctorReportSchema`, docs/json-vocabulary.md). */
function doctorPayload(report: {
  ok: boolean;
  health: HealthReport;
  status: KeyStatus | undefined;
  keys: KeyCheck[];
  deliveries: { principal: string; faucet: string; targets: DeliveryStatus[] }[];
  overdue: PolicyStatus[];
  resolutions: PendingResolution[] | undefined;
  settled: KeyCheck[] | undefined;
  rescued: RescuedKey[];
}): DoctorReportView {
  const { status } = report;
  const owner = status && { principal: principalView(status.principal), label: status.label };
  const pending = status?.pendingRotation;
  const lost = status?.keyLost;
  return {
    ok: report.ok,
    health: healthView(report.health),
    keys: report.keys.map(keyCheckView),
    deliveries: report.deliveries.map((record) => ({
      ...deliveryTargetsView(record),
      faucet: record.faucet,
    })),
    overdue: report.overdue.map(policyStatusView),
    ...(owner && pending
      ? {
          pending_rotation: {
            ...owner,
            request_id: pending.requestId,
            started_at: pending.startedAt,
            phase: pending.phase,
          },
        }
      : {}),
    ...(owner && lost
      ? {
          key_lost: {
            ...owner,
            request_id: lost.requestId,
            old_fingerprint: lost.oldFingerprint,
            lost_at: lost.lostAt,
            recovery: lost.recovery,
          },
        }
      : {}),
    ...(report.resolutions === undefined
      ? {}
      : { resolutions: report.resolutions.map(pendingResolutionView) }),
    ...(report.settled === undefined ? {} : { settled: report.settled.map(keyCheckView) }),
    ...(report.rescued.length === 0 ? {} : { rescued_keys: report.rescued.map(rescuedKeyView) }),
  };
}

import {
  describePolicy,
  formatDuration,
  type Identity,
  identityView,
  importAdvice,
  isRekeyError,
  type KeyStatus,
  keyStatusView,
  type RescuedKey,
  rescuedKeyView,
  storeHealthView,
} from "@rekey/core";
import type { CommandContext } from "../context.js";
import { EXIT_CODES } from "../exit-codes.js";
import { type Colors, formatFields, type TimeFormat } from "../output.js";
import { deliveryTable } from "./deliver.js";
import { parseAgentOption } from "./input.js";

/**
 * `rekey status [--agent ID]`: identity, key fingerprint and age, last rotation, cooldown,
 * unfinished rotation, and the store's location and health. An unreachable faucet does not
 * fail the command: the local facts are still shown, with the identity error.
 * @throws RekeyError INVALID_INPUT (bad id), STORE_*, KEY_LOST, CONFIG_INVALID
 */
export async function runStatus(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const principal = parseAgentOption(options.agent);
  const { status, identity, identityError, storeHealth, rescued } = await context.withRekey(
    async ({ rekey, store }) => {
      const status = await rekey.status(principal);
      // Keys the store refused, kept only in rescue files: until imported they are nowhere else.
      const rescued = await rekey.rescuedKeys();
      let identity: (Identity & { fingerprint: string }) | undefined;
      let identityError: { code: string; message: string } | undefined;
      if (status.hasKey) {
        try {
          identity = await rekey.whoami(status.principal);
        } catch (error) {
          if (!isRekeyError(error)) throw error;
          identityError = { code: error.code, message: error.message };
        }
      }
      return { status, identity, identityError, storeHealth: await store.health(), rescued };
    },
  );
  context.output.result(
    "status",
    {
      ...keyStatusView(status),
      ...(identity === undefined ? {} : { identity: identityView(identity) }),
      ...(identityError === undefined ? {} : { identity_error: identityError }),
      store_health: storeHealthView(storeHealth),
      ...(rescued.length === 0 ? {} : { rescued_keys: rescued.map(rescuedKeyView) }),
    },
    () =>
      renderStatus(
        status,
        identity,
        identityError,
        storeHealth,
        rescued,
        context.output.colors,
        context.output.time,
      ),
  );
  // A recorded loss is a problem until recovered or acknowledged: never exit 0 over it.
  if (status.keyLost !== undefined) context.setExitCode(EXIT_CODES.KEY_LOST);
}

function renderStatus(
  status: KeyStatus,
  identity: Identity | undefined,
  identityError: { code: string; message: string } | undefined,
  storeHealth: { ok: boolean; problems: string[] },
  rescued: RescuedKey[],
  colors: Colors,
  time: TimeFormat,
): string {
  const cooldown =
    status.cooldownRemainingSeconds > 0
      ? colors.yellow(
          `withdrawals blocked for ${formatDuration(status.cooldownRemainingSeconds)} (until ${time(status.cooldownUntil ?? "")})`,
        )
      : colors.green("none");
  const identityText =
    identity !== undefined
      ? `${identity.type} ${identity.id} "${identity.name}", balance ${identity.balanceSats} sats`
      : identityError !== undefined
        ? colors.red(`unavailable: ${identityError.message} (${identityError.code})`)
        : undefined;
  const lastRotation = status.lastRotation
    ? `${time(status.lastRotation.rotatedAt)} (${status.lastRotation.oldFingerprint} -> ${status.lastRotation.newFingerprint}${status.lastRotation.verified ? ", verified" : ", NOT verified"})`
    : "never";
  const pending = status.pendingRotation
    ? colors.red(
        `${status.pendingRotation.phase} since ${time(status.pendingRotation.startedAt)} (run rekey doctor --repair)`,
      )
    : "none";
  return formatFields([
    ["profile", status.profile],
    ["principal", status.label],
    ["faucet", status.baseUrl],
    ["identity", identityText],
    [
      "key",
      status.hasKey
        ? `${status.fingerprint}${status.keySource === "env" ? " (from the environment)" : ""}`
        : status.keyLost !== undefined
          ? colors.red(
              `LOST (KEY_LOST) at ${time(status.keyLost.lostAt)}: ${status.keyLost.oldFingerprint} was rotated and its successor never reached the store. ${status.keyLost.recovery} (or \`rekey acknowledge\`)`,
            )
          : colors.yellow(`none${status.nextStep === undefined ? "" : ` (${status.nextStep})`}`),
    ],
    [
      "key age",
      status.keyAgeSeconds === undefined ? undefined : formatDuration(status.keyAgeSeconds),
    ],
    ["last rotation", status.hasKey ? lastRotation : undefined],
    ["cooldown", cooldown],
    ["unfinished rotation", pending],
    ["rotation policy", status.schedule ? describePolicy(status.schedule.policy) : undefined],
    ["next rotation", status.schedule ? scheduleText(status.schedule, colors, time) : undefined],
    [
      "store",
      `${status.store.kind} ${status.store.location} (${storeHealth.ok ? colors.green("healthy") : colors.red(`problems: ${storeHealth.problems.join("; ")}`)})`,
    ],
    ...rescued.map((key): [string, string] => ["rescued key", rescuedKeyLine(key, colors, time)]),
    ...(status.deliveries?.length
      ? ([["deliveries", `\n${deliveryTable(status.deliveries, colors, time)}`]] as [
          string,
          string,
        ][])
      : []),
  ]);
}

function scheduleText(
  schedule: NonNullable<KeyStatus["schedule"]>,
  colors: Colors,
  time: TimeFormat,
): string {
  const when =
    schedule.nextRotationAt === undefined
      ? "its window does not open in the next nine days"
      : time(schedule.nextRotationAt);
  const window =
    schedule.policy.window === undefined
      ? ""
      : schedule.inWindow
        ? ", window open"
        : ", window closed";
  if (schedule.overdue)
    return colors.red(`OVERDUE (due ${time(schedule.dueAt)}); next ${when}${window}`);
  return `${schedule.due ? colors.yellow("due now") : when}${window}`;
}

/**
 * A key the store refused, kept in a rescue file (fingerprint only): where it is and the command
 * that stores it. Doctor shows the same line.
 */
export function rescuedKeyLine(key: RescuedKey, colors: Colors, time: TimeFormat): string {
  return colors.red(
    `${key.principal} ${key.fingerprint} (${key.source}, ${time(key.savedAt)}) is in the rescue file ${key.path}, not in the store: run \`${importAdvice(key)}\``,
  );
}

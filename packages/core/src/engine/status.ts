import { deliveryStatusOf } from "../delivery/delivery-journal.js";
import { RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { OPERATOR, principalLabel, samePrincipal } from "../principal.js";
import { keyScheduleOf } from "../schedule/policies.js";
import { activePrincipalOf, recordOf, storedKeyOf } from "./principal-records.js";
import { listRescuedKeys } from "./rescue-audit.js";
import { importAdvice } from "./rescued-keys.js";
import { recoveryOf } from "./resolve-intent.js";
import type { Session } from "./session.js";
import type { KeyStatus, Rekey } from "./types.js";

/** `status`: what a principal's record says (key, cooldown, journal, loss, deliveries, schedule). */
export function createStatus(session: Session): Pick<Rekey, "status"> {
  const {
    profileName,
    actAs,
    store,
    clock,
    readView,
    baseUrlOf,
    seededActiveIn,
    envKey,
    pendingIn,
    ensureResolved,
    storedActiveIn,
    cooldownRemaining,
    context,
  } = session;
  return {
    async status(principal, options = {}) {
      // One read serves the whole status unless an unfinished rotation must be resolved first.
      let view = await readView({ maxAgeMs: options.maxAgeMs });
      if (pendingIn(view).length > 0) {
        // Whatever the resolution found is read back from the store: a lost key as its
        // `keyLost` record (the document every later status shows too, exit 9 in the CLI), an
        // unreachable faucet as the unfinished rotation.
        await ensureResolved(view).catch(() => undefined);
        view = await readView();
      }
      // No await when the store answers: status endpoints call this on every poll.
      const actor = storedActiveIn(view) ?? (await seededActiveIn(view));
      const target = principal ?? actor ?? activePrincipalOf(view) ?? OPERATOR;
      // An agent session sees its own status only, as with rotateKey.
      if (actor?.kind === "agent" && !samePrincipal(actor, target)) {
        throw new RekeyError(
          "FORBIDDEN",
          `An agent can read only its own status, not the ${principalLabel(target)}'s`,
          { details: { principal: principalLabel(target) } },
        );
      }
      const record = recordOf(view, target);
      const stored = storedKeyOf(view, target);
      const seeded = stored ? undefined : await envKey(target, view);
      if (!view.profile && record === undefined && seeded === undefined) {
        // A registration whose key the store refused leaves no profile, only a rescue file:
        // registering again would make a second account, so that file is the way on.
        const [rescued] = await listRescuedKeys(context, view);
        throw new RekeyError(
          "NOT_FOUND",
          actAs === undefined
            ? `Profile "${profileName}" holds no key yet: it does not exist in ${store.location}`
            : `No record of ${actAs} on ${view.faucet}`,
          {
            hint:
              rescued === undefined
                ? "Run `rekey register` or `rekey login` (or `rekey profiles list` to see what exists)."
                : `A rescue file holds the key of the ${rescued.label} (${rescued.fingerprint}) that the store refused: run \`${importAdvice(rescued)}\` once the store takes writes.`,
            details: { principal: principalLabel(target), missing: "profile" },
          },
        );
      }
      if (principal?.kind === "agent" && record === undefined && seeded === undefined) {
        throw new RekeyError(
          "NOT_FOUND",
          `No record of the ${principalLabel(principal)} in profile "${profileName}"`,
          {
            hint: "Create it with `rekey agents create`, or rotate its key as its operator to store one.",
            details: { principal: principalLabel(principal) },
          },
        );
      }
      const hasKey = stored !== undefined || seeded !== undefined;
      const keyLost = record?.keyLost && stored === undefined ? record.keyLost : undefined;
      const intent = record?.intent;
      const cooldownUntil = record?.cooldownUntil;
      const remaining = cooldownRemaining(cooldownUntil);
      return {
        principal: target,
        label: principalLabel(target),
        profile: profileName,
        baseUrl: baseUrlOf(view.profile),
        hasKey,
        keySource: stored ? "store" : seeded !== undefined ? "env" : undefined,
        fingerprint:
          stored?.fingerprint ?? (seeded === undefined ? undefined : fingerprint(seeded)),
        name: record?.name,
        savedAt: stored?.savedAt,
        keyAgeSeconds: stored
          ? Math.max(0, Math.floor((clock.now() - Date.parse(stored.savedAt)) / 1000))
          : undefined,
        lastRotation: record?.lastRotation,
        cooldownUntil: remaining > 0 ? cooldownUntil : undefined,
        cooldownRemainingSeconds: remaining,
        pendingRotation: intent
          ? { requestId: intent.requestId, startedAt: intent.startedAt, phase: intent.phase }
          : undefined,
        keyLost: keyLost && {
          requestId: keyLost.requestId,
          oldFingerprint: keyLost.oldFingerprint,
          lostAt: keyLost.lostAt,
          recovery: keyLost.recovery,
        },
        nextStep:
          hasKey || keyLost !== undefined || intent !== undefined
            ? undefined
            : // A record without a key is an account (or agent) that exists upstream: registering
              // would make a second account, not get this one back.
              record !== undefined
              ? target.kind === "operator"
                ? `${recoveryOf(target)} (Or \`rekey login\` with its current key, if you hold it.)`
                : recoveryOf(target)
              : "Run `rekey register` (a new account) or `rekey login` (a key you hold).",
        deliveries: record?.deliveries ? deliveryStatusOf(record) : undefined,
        store: { kind: store.kind, location: store.location },
        schedule: record === undefined ? undefined : keyScheduleOf(record, clock.now()),
      } satisfies KeyStatus;
    },
  };
}

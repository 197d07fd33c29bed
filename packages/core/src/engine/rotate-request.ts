import { RekeyError } from "../errors.js";
import { cooldownMinutes, principalLabel, samePrincipal } from "../principal.js";
import { recordIdOf } from "../store/record-ids.js";
import { activePrincipalOf, recordOf, storedKeyOf } from "./principal-records.js";
import type { CompletedRotation } from "./rotation.js";
import { rotateUnderLock } from "./rotation.js";
import { secondsUntil } from "./rotation-checks.js";
import type { Session } from "./session.js";
import { createSingleFlight } from "./single-flight.js";
import type { RotateRequest, RotationPlan, RotationResult } from "./types.js";

/**
 * `rotateKey`: from a request to a plan (dry run) or a rotation. The request is resolved against
 * one read of the store; the rotation itself runs under the principal's lock (rotation.ts).
 */
export function createRotateKey(
  session: Session,
): (request?: RotateRequest) => Promise<RotationResult | RotationPlan> {
  const {
    clock,
    idempotentBases,
    readView,
    snapshotView,
    context,
    deliverRotation,
    pendingIn,
    ensureResolved,
    requireActive,
    currentKey,
    recordPrincipalIn,
    toResult,
  } = session;
  const rotationFlights = createSingleFlight<CompletedRotation>();

  async function rotateKey(request: RotateRequest = {}): Promise<RotationResult | RotationPlan> {
    // The key as the caller saw it, read before waiting on anything: if another process's
    // rotation finishes while this call waits (for its lock, or to resolve its intent), this
    // call returns that rotation instead of rotating a second time (checked under the lock).
    const seen =
      request.requestId === undefined ? undefined : idempotentBases.get(request.requestId);
    const first = seen === undefined ? await readView() : snapshotView(seen);
    const seenTarget = request.target ?? activePrincipalOf(first);
    const seenFingerprint = seenTarget ? storedKeyOf(first, seenTarget)?.fingerprint : undefined;
    const resolvedNothing = pendingIn(first).length === 0;
    await ensureResolved(first);
    const view = resolvedNothing ? first : await readView();
    const actor = request.actor ?? (await requireActive(view));
    const target = request.target ?? actor;
    if (actor.kind === "agent" && !samePrincipal(actor, target)) {
      throw new RekeyError(
        "FORBIDDEN",
        `An agent can rotate only its own key, not the ${principalLabel(target)}'s`,
        {
          hint: "Omit agent_id to rotate your own key; an operator rotates its agents' keys.",
          details: { principal: principalLabel(target) },
        },
      );
    }
    const actorKey = await currentKey(actor, view);
    const actorRecord = await recordPrincipalIn(view, actor);
    const targetRecord = await recordPrincipalIn(view, target);
    const targetStored = storedKeyOf(view, target);
    const targetFingerprint =
      targetStored?.fingerprint ??
      (samePrincipal(actor, target) ? actorKey.fingerprint : undefined);
    const expectedFingerprint =
      request.expectedFingerprint ??
      (seenTarget && seenFingerprint && samePrincipal(seenTarget, target)
        ? seenFingerprint
        : targetFingerprint);
    if (request.dryRun) {
      const cooldownSource = recordOf(view, target)?.cooldownUntil;
      const currentCooldown =
        secondsUntil(cooldownSource, clock.now()) > 0 ? cooldownSource : undefined;
      const minutes = cooldownMinutes(target);
      return {
        dryRun: true,
        principal: target,
        label: principalLabel(target),
        currentFingerprint: targetFingerprint ?? "none",
        action:
          target.kind === "agent" && !samePrincipal(actor, target)
            ? "regenerate_agent_key"
            : "regenerate_operator_key",
        cooldownMinutes: minutes,
        cooldownWouldEndAt: new Date(clock.now() + minutes * 60_000).toISOString(),
        currentCooldownUntil: currentCooldown,
        blockedByCooldown: currentCooldown !== undefined && !request.force,
      };
    }
    const flightKey = recordIdOf(view.faucet, targetRecord);
    const inFlight = rotationFlights.running(flightKey);
    if (inFlight) return toResult(await inFlight, true, request.reveal);
    // The journal entry written before the upstream call doubles as the writability preflight:
    // a store that cannot take it stops the rotation before the faucet is asked. The cooldown
    // and "rotated meanwhile" are checked under the lock, on the store as it is then.
    const rotation = await rotationFlights.run(flightKey, () =>
      rotateUnderLock(context, {
        view,
        target,
        actor,
        targetRecord,
        actorRecord,
        expectedFingerprint,
        requestId: request.requestId,
        force: request.force,
        signal: request.signal,
      }),
    );
    const result = toResult(rotation, rotation.shared, request.reveal);
    // After commit and verify: the rotation stands whatever its deliveries do.
    const deliveries = rotation.shared
      ? undefined
      : await deliverRotation(flightKey, rotation.snapshot);
    return deliveries === undefined ? result : { ...result, deliveries };
  }

  return rotateKey;
}

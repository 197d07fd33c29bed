import type { RotationPlan, RotationResult } from "@rekey/core";

/** The `--json` view of a completed rotation; the raw key only when it was revealed. */
export function rotationPayload(result: RotationResult): Record<string, unknown> {
  return {
    dryRun: false,
    principal: result.principal,
    label: result.label,
    oldFingerprint: result.oldFingerprint,
    newFingerprint: result.newFingerprint,
    rotatedAt: result.rotatedAt,
    cooldownUntil: result.cooldownUntil,
    cooldownMinutes: result.cooldownMinutes,
    verified: result.verified,
    requestId: result.requestId,
    shared: result.shared,
    ...(result.apiKey === undefined ? {} : { apiKey: result.apiKey }),
    ...(result.deliveries === undefined ? {} : { deliveries: result.deliveries }),
  };
}

/** The `--json` view of a dry-run plan. */
export function planPayload(plan: RotationPlan): Record<string, unknown> {
  return {
    dryRun: true,
    principal: plan.principal,
    label: plan.label,
    currentFingerprint: plan.currentFingerprint,
    action: plan.action,
    cooldownMinutes: plan.cooldownMinutes,
    cooldownWouldEndAt: plan.cooldownWouldEndAt,
    ...(plan.currentCooldownUntil === undefined
      ? {}
      : { currentCooldownUntil: plan.currentCooldownUntil }),
    blockedByCooldown: plan.blockedByCooldown,
  };
}

import type { z } from "@hono/zod-openapi";
import type {
  AgentStatus,
  CurrentKey,
  KeyStatus,
  Principal,
  RotationPlan,
  RotationResult,
} from "@rekey/core";
import { principalLabel } from "@rekey/core";
import type {
  agentsResponseSchema,
  currentKeyResponseSchema,
  principalSchema,
  rotateResponseSchema,
  statusResponseSchema,
} from "./schemas.js";

// Core results in the HTTP API's snake_case shape. Only `presentCurrentKey` carries a raw key.

/** `{ kind: "operator" }` or `{ kind: "agent", agent_id }`. */
export function presentPrincipal(principal: Principal): z.infer<typeof principalSchema> {
  return principal.kind === "operator"
    ? { kind: "operator" }
    : { kind: "agent", agent_id: principal.agentId };
}

/** A rotation result or dry-run plan, with fingerprints only (never `apiKey`). */
export function presentRotation(
  outcome: RotationResult | RotationPlan,
): z.infer<typeof rotateResponseSchema> {
  if (outcome.dryRun) {
    return {
      dry_run: true,
      principal: presentPrincipal(outcome.principal),
      label: outcome.label,
      fingerprint: outcome.currentFingerprint,
      action: outcome.action,
      cooldown_minutes: outcome.cooldownMinutes,
      cooldown_would_end_at: outcome.cooldownWouldEndAt,
      ...(outcome.currentCooldownUntil === undefined
        ? {}
        : { current_cooldown_until: outcome.currentCooldownUntil }),
      blocked_by_cooldown: outcome.blockedByCooldown,
    };
  }
  // Field by field on purpose: `apiKey` (present only with reveal) must never be copied.
  return {
    dry_run: false,
    principal: presentPrincipal(outcome.principal),
    label: outcome.label,
    old_fingerprint: outcome.oldFingerprint,
    fingerprint: outcome.newFingerprint,
    rotated_at: outcome.rotatedAt,
    cooldown_until: outcome.cooldownUntil,
    cooldown_minutes: outcome.cooldownMinutes,
    verified: outcome.verified,
    shared: outcome.shared,
    request_id: outcome.requestId,
    ...(outcome.deliveries === undefined
      ? {}
      : {
          deliveries: outcome.deliveries.map((delivery) => ({
            target: delivery.target,
            kind: delivery.kind,
            description: delivery.description,
            status: delivery.status,
            fingerprint: delivery.fingerprint,
            ...(delivery.error === undefined ? {} : { error: { ...delivery.error } }),
            ...(delivery.nextAttemptAt === undefined
              ? {}
              : { next_attempt_at: delivery.nextAttemptAt }),
          })),
        }),
  };
}

/** Core's `KeyStatus` for `GET /v1/status`. */
export function presentStatus(status: KeyStatus): z.infer<typeof statusResponseSchema> {
  const last = status.lastRotation;
  return {
    principal: presentPrincipal(status.principal),
    label: status.label,
    profile: status.profile,
    base_url: status.baseUrl,
    has_key: status.hasKey,
    key_source: status.keySource,
    fingerprint: status.fingerprint,
    name: status.name,
    saved_at: status.savedAt,
    key_age_seconds: status.keyAgeSeconds,
    last_rotation:
      last === undefined
        ? undefined
        : {
            request_id: last.requestId,
            old_fingerprint: last.oldFingerprint,
            new_fingerprint: last.newFingerprint,
            rotated_at: last.rotatedAt,
            cooldown_until: last.cooldownUntil,
            verified: last.verified,
            surface: last.surface,
          },
    cooldown_until: status.cooldownUntil,
    cooldown_remaining_seconds: status.cooldownRemainingSeconds,
    pending_rotation:
      status.pendingRotation === undefined
        ? undefined
        : {
            request_id: status.pendingRotation.requestId,
            started_at: status.pendingRotation.startedAt,
            phase: status.pendingRotation.phase,
          },
    deliveries: status.deliveries?.map((target) => ({
      target: target.target,
      kind: target.kind,
      description: target.description,
      state: target.state,
      delivered_fingerprint: target.deliveredFingerprint,
      at: target.at,
      error: target.error === undefined ? undefined : { ...target.error },
      next_attempt_at: target.nextAttemptAt,
    })),
    store: { kind: status.store.kind, location: status.store.location },
  };
}

/** Core's agent list for `GET /v1/agents`. */
export function presentAgents(agents: AgentStatus[]): z.infer<typeof agentsResponseSchema> {
  return {
    agents: agents.map((entry) => ({
      id: entry.id,
      name: entry.name,
      balance_sats: entry.balanceSats,
      is_active: entry.isActive,
      has_key: entry.hasKey,
      fingerprint: entry.fingerprint,
      cooldown_until: entry.cooldownUntil,
      cooldown_remaining_seconds: entry.cooldownRemainingSeconds,
      last_rotated_at: entry.lastRotatedAt,
    })),
  };
}

/** The one presenter that carries a raw key: only for `read_key` tokens, sent `no-store`. */
export function presentCurrentKey(current: CurrentKey): z.infer<typeof currentKeyResponseSchema> {
  return {
    principal: presentPrincipal(current.principal),
    label: principalLabel(current.principal),
    fingerprint: current.fingerprint,
    api_key: current.key,
  };
}

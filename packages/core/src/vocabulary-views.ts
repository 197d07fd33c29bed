// The `*View` functions of the JSON vocabulary (vocabulary.ts has the shapes, as zod schemas).
// Apart from the schemas because a command that prints one view must not build ~300 zod schemas
// first (`rekey status`, bench/README.md "Cold start"); their types are the schemas' types.
import type { DeliveryOutcome, DeliveryStatus } from "./delivery/delivery-journal.js";
import type { ProfileSummary } from "./engine/profiles.js";
import type { AgentRotationOutcome } from "./engine/rotate-agents.js";
import type {
  AgentStatus,
  AuditEntry,
  AuditVerification,
  HealthReport,
  Identity,
  KeyCheck,
  KeyStatus,
  PendingResolution,
  RescuedKey,
  RotationPlan,
  RotationResult,
} from "./engine/types.js";
import type { ErrorFacts } from "./error-facts.js";
import { type Principal, principalLabel } from "./principal.js";
import type { ScheduleEvent } from "./schedule/events.js";
import type { PolicyStatus } from "./schedule/policies.js";
import { describePolicy } from "./schedule/policy.js";
import type { DueReport } from "./schedule/rotate-due.js";
import type { StoreHealth } from "./store/types.js";
import type {
  AgentListView,
  AgentRotationOutcomeView,
  AgentView,
  AuditEntryView,
  DeliveryOutcomeView,
  DeliveryStatusView,
  DeliveryTargetsView,
  DueReportView,
  ErrorView,
  HealthView,
  HistoryView,
  IdentityView,
  KeyCheckView,
  KeyStatusView,
  PendingResolutionView,
  PolicyStatusView,
  PrincipalView,
  ProfileSummaryView,
  RescuedKeyView,
  RotationPlanView,
  RotationView,
  ScheduleEventView,
  StoreHealthView,
} from "./vocabulary.js";

/** Drops undefined fields, so a view serialises and validates the same everywhere. */
function defined<T extends Record<string, unknown>>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as T;
}

export function principalView(principal: Principal): PrincipalView {
  return principal.kind === "operator"
    ? { kind: "operator" }
    : { kind: "agent", agent_id: principal.agentId };
}

export function deliveryOutcomeView(outcome: DeliveryOutcome): DeliveryOutcomeView {
  return defined({
    target: outcome.target,
    kind: outcome.kind,
    description: outcome.description,
    status: outcome.status,
    fingerprint: outcome.fingerprint,
    error: outcome.error && { code: outcome.error.code, message: outcome.error.message },
    next_attempt_at: outcome.nextAttemptAt,
  });
}

export function deliveryStatusView(status: DeliveryStatus): DeliveryStatusView {
  return defined({
    target: status.target,
    kind: status.kind,
    description: status.description,
    state: status.state,
    delivered_fingerprint: status.deliveredFingerprint,
    at: status.at,
    error: status.error && { code: status.error.code, message: status.error.message },
    next_attempt_at: status.nextAttemptAt,
  });
}

/**
 * A completed rotation. Field by field on purpose: `apiKey` (present only when core was asked
 * to reveal it) is copied only when the caller passes `revealKey`.
 */
export function rotationView(
  result: RotationResult,
  options: { revealKey?: boolean } = {},
): RotationView {
  return defined({
    dry_run: false as const,
    principal: principalView(result.principal),
    label: result.label,
    old_fingerprint: result.oldFingerprint,
    fingerprint: result.newFingerprint,
    rotated_at: result.rotatedAt,
    cooldown_until: result.cooldownUntil,
    cooldown_minutes: result.cooldownMinutes,
    verified: result.verified,
    shared: result.shared,
    request_id: result.requestId,
    api_key: options.revealKey === true ? result.apiKey : undefined,
    deliveries: result.deliveries?.map(deliveryOutcomeView),
    operator_id: result.operatorId,
  });
}

export function rotationPlanView(plan: RotationPlan): RotationPlanView {
  return defined({
    dry_run: true as const,
    principal: principalView(plan.principal),
    label: plan.label,
    fingerprint: plan.currentFingerprint,
    action: plan.action,
    cooldown_minutes: plan.cooldownMinutes,
    cooldown_would_end_at: plan.cooldownWouldEndAt,
    current_cooldown_until: plan.currentCooldownUntil,
    blocked_by_cooldown: plan.blockedByCooldown,
  });
}

export function keyStatusView(status: KeyStatus): KeyStatusView {
  const last = status.lastRotation;
  const pending = status.pendingRotation;
  const lost = status.keyLost;
  const schedule = status.schedule;
  return defined({
    principal: principalView(status.principal),
    label: status.label,
    profile: status.profile,
    base_url: status.baseUrl,
    has_key: status.hasKey,
    key_source: status.keySource,
    fingerprint: status.fingerprint,
    name: status.name,
    saved_at: status.savedAt,
    key_age_seconds: status.keyAgeSeconds,
    last_rotation: last && {
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
    pending_rotation: pending && {
      request_id: pending.requestId,
      started_at: pending.startedAt,
      phase: pending.phase,
    },
    key_lost: lost && {
      request_id: lost.requestId,
      old_fingerprint: lost.oldFingerprint,
      lost_at: lost.lostAt,
      recovery: lost.recovery,
    },
    next_step: status.nextStep,
    deliveries: status.deliveries?.map(deliveryStatusView),
    schedule:
      schedule &&
      defined({
        policy: describePolicy(schedule.policy),
        due_at: schedule.dueAt,
        next_rotation_at: schedule.nextRotationAt,
        in_window: schedule.inWindow,
        due: schedule.due,
        overdue: schedule.overdue,
      }),
    store: { kind: status.store.kind, location: status.store.location },
  });
}

export function identityView(identity: Identity & { fingerprint: string }): IdentityView {
  const principal: Principal =
    identity.type === "operator" ? { kind: "operator" } : { kind: "agent", agentId: identity.id };
  return defined({
    principal: principalView(principal),
    label: principalLabel(principal),
    id: identity.id,
    name: identity.name,
    balance_sats: identity.balanceSats,
    fingerprint: identity.fingerprint,
    agent_count: identity.type === "operator" ? identity.agentCount : undefined,
    operator_id: identity.type === "agent" ? identity.operatorId : undefined,
    budget_limit_sats: identity.type === "agent" ? identity.budgetLimitSats : undefined,
  });
}

export function agentView(entry: AgentStatus): AgentView {
  return defined({
    agent_id: entry.id,
    name: entry.name,
    balance_sats: entry.balanceSats,
    is_active: entry.isActive,
    has_key: entry.hasKey,
    fingerprint: entry.fingerprint,
    cooldown_until: entry.cooldownUntil,
    cooldown_remaining_seconds: entry.cooldownRemainingSeconds,
    last_rotated_at: entry.lastRotatedAt,
  });
}

export function agentListView(agents: AgentStatus[]): AgentListView {
  return { agents: agents.map(agentView) };
}

/** The facts of an error (see {@link ErrorFacts}) in the vocabulary. */
export function errorView(facts: ErrorFacts): ErrorView {
  return defined({
    code: facts.code,
    message: facts.message,
    hint: facts.hint,
    principal: facts.principal && principalView(facts.principal),
    cooldown_until: facts.cooldown?.until,
    cooldown_remaining_seconds: facts.cooldown?.remainingSeconds,
    retry_after_seconds: facts.retryAfterSeconds,
    recovery: facts.recovery,
    issues: facts.issues,
    rescue_file: facts.rescueFile,
  });
}

/**
 * A stored record's principal ("operator", "operator:12", "agent:7") in the vocabulary:
 * the principal object, its label and the operator's id when the record names one.
 */
export function recordPrincipalView(recordPrincipal: string): {
  principal: PrincipalView;
  label: string;
  operator_id?: number;
} {
  const agentId = /^agent:(\d+)$/.exec(recordPrincipal)?.[1];
  if (agentId !== undefined) {
    const principal: Principal = { kind: "agent", agentId: Number(agentId) };
    return { principal: principalView(principal), label: principalLabel(principal) };
  }
  const operatorId = /^operator:(\d+)$/.exec(recordPrincipal)?.[1];
  return defined({
    principal: { kind: "operator" as const },
    label: "operator",
    operator_id: operatorId === undefined ? undefined : Number(operatorId),
  });
}

export function auditEntryView(entry: AuditEntry): AuditEntryView {
  return defined({
    seq: entry.seq,
    at: entry.at,
    surface: entry.surface,
    profile: entry.profile,
    ...recordPrincipalView(entry.principal),
    action: entry.action,
    outcome: entry.outcome,
    old_fingerprint: entry.oldFingerprint,
    new_fingerprint: entry.newFingerprint,
    cooldown_until: entry.cooldownUntil,
    request_id: entry.requestId,
    error_code: entry.errorCode,
    delivery_target: entry.deliveryTarget,
    prev_hash: entry.prevHash,
    hash: entry.hash,
  });
}

export function historyView(
  entries: AuditEntry[],
  verification?: AuditVerification | undefined,
): HistoryView {
  return defined({
    entries: entries.map(auditEntryView),
    verification:
      verification &&
      defined({
        ok: verification.ok,
        count: verification.count,
        broken_at: verification.ok ? undefined : verification.brokenAt,
        reason: verification.ok ? undefined : verification.reason,
      }),
  });
}

export function storeHealthView(health: StoreHealth): StoreHealthView {
  const encryption = health.encryption;
  return defined({
    ok: health.ok,
    kind: health.kind,
    location: health.location,
    problems: [...health.problems],
    encryption:
      encryption &&
      defined({
        state: encryption.state,
        clear_keys: encryption.clearKeys,
        key_id: encryption.keyId,
        key_source: encryption.keySource,
        under_other_keys: encryption.underOtherKeys,
      }),
  });
}

export function healthView(report: HealthReport): HealthView {
  return {
    ok: report.ok,
    store: { ...storeHealthView(report.store), readable: report.store.readable },
    upstream: defined({
      ok: report.upstream.ok,
      base_url: report.upstream.baseUrl,
      error: report.upstream.error,
    }),
  };
}

export function rescuedKeyView(rescued: RescuedKey): RescuedKeyView {
  return defined({
    ...recordPrincipalView(rescued.principal),
    fingerprint: rescued.fingerprint,
    file: rescued.path,
    source: rescued.source,
    saved_at: rescued.savedAt,
    profile: rescued.profile,
  });
}

export function keyCheckView(check: KeyCheck): KeyCheckView {
  return defined({
    ...recordPrincipalView(check.principal),
    fingerprint: check.fingerprint,
    current: check.current,
    alive: check.alive,
    error: check.error,
  });
}

export function pendingResolutionView(resolution: PendingResolution): PendingResolutionView {
  return defined({
    principal: principalView(resolution.principal),
    label: resolution.label,
    request_id: resolution.requestId,
    outcome: resolution.outcome,
    new_fingerprint: resolution.newFingerprint,
  });
}

export function deliveryTargetsView(listed: {
  principal: string;
  targets: DeliveryStatus[];
}): DeliveryTargetsView {
  return {
    ...recordPrincipalView(listed.principal),
    targets: listed.targets.map(deliveryStatusView),
  };
}

export function policyStatusView(status: PolicyStatus): PolicyStatusView {
  const { policy, due } = status;
  return defined({
    ...recordPrincipalView(status.principal),
    fingerprint: status.fingerprint,
    saved_at: status.savedAt,
    policy: describePolicy(policy),
    rules: defined({
      max_age_seconds: policy.maxAgeSeconds,
      window: policy.window,
      jitter_seconds: policy.jitterSeconds,
      grace_seconds: policy.graceSeconds,
      set_at: policy.setAt,
    }),
    schedule:
      due &&
      defined({
        due_at: due.dueAt,
        next_rotation_at: due.nextRotationAt,
        in_window: due.inWindow,
        due: due.due,
        overdue_at: due.overdueAt,
        overdue: due.overdue,
      }),
  });
}

export function dueReportView(report: DueReport): DueReportView {
  return defined({
    due: true as const,
    dry_run: report.dryRun,
    checked_at: report.checkedAt,
    next_rotation_at: report.nextRotationAt,
    results: report.results.map((outcome) =>
      defined({
        ...recordPrincipalView(outcome.principal),
        result: outcome.result,
        old_fingerprint: outcome.oldFingerprint,
        fingerprint: outcome.newFingerprint,
        cooldown_until: outcome.cooldownUntil,
        error: outcome.error && { code: outcome.error.code, message: outcome.error.message },
        deliveries: outcome.deliveries?.map(deliveryOutcomeView),
        next_rotation_at: outcome.nextRotationAt,
        overdue: outcome.overdue,
      }),
    ),
  });
}

/**
 * One agent of a bulk rotation. As with {@link rotationView}, the raw key is copied only when
 * the caller passes `revealKey`.
 */
export function agentRotationOutcomeView(
  outcome: AgentRotationOutcome,
  options: { revealKey?: boolean } = {},
): AgentRotationOutcomeView {
  const principal: Principal = { kind: "agent", agentId: outcome.agentId };
  return defined({
    principal: principalView(principal),
    label: principalLabel(principal),
    agent_id: outcome.agentId,
    name: outcome.name,
    result: outcome.result,
    old_fingerprint: outcome.oldFingerprint,
    fingerprint: outcome.newFingerprint,
    cooldown_until: outcome.cooldownUntil,
    error: outcome.error && { code: outcome.error.code, message: outcome.error.message },
    deliveries: outcome.deliveries?.map(deliveryOutcomeView),
    api_key: options.revealKey === true ? outcome.apiKey : undefined,
  });
}

export function profileView(profile: ProfileSummary): ProfileSummaryView {
  const operatorId =
    profile.operator === undefined ? undefined : recordPrincipalView(profile.operator).operator_id;
  return defined({
    name: profile.name,
    base_url: profile.baseUrl,
    operator_id: operatorId,
    acts_as: profile.actsAs === undefined ? undefined : recordPrincipalView(profile.actsAs),
    current: profile.current,
    has_key: profile.hasKey,
    principals: profile.principals.map(recordPrincipalView),
  });
}

export function scheduleEventView(event: ScheduleEvent): ScheduleEventView {
  return defined({
    type: event.type,
    at: event.at,
    faucet: event.faucet,
    ...recordPrincipalView(event.principal),
    old_fingerprint: event.oldFingerprint,
    new_fingerprint: event.newFingerprint,
    cooldown_until: event.cooldownUntil,
    overdue_at: event.overdueAt,
    target: event.target,
    error_code: event.errorCode,
    message: event.message,
  });
}

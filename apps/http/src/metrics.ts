import type { Clock, HealthReport, Principal } from "@rekey/core";

/** Upper bounds (seconds) of the rotation duration histogram: a rotation is 2-3 faucet calls. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** What the endpoint counts, exposed as Prometheus text by `render()`. */
export interface HttpMetrics {
  /** Counts a finished `POST /v1/rotate`: `outcome` is rotated, shared, dry_run, replayed or an error code. */
  recordRotation(outcome: string, durationSeconds: number): void;
  /** Remembers when a principal's cooldown ends. */
  recordCooldown(principal: Principal, cooldownUntil: string | undefined): void;
  /** The last health check: store leftovers show here, not as unreadiness. */
  recordHealth(report: HealthReport): void;
  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string;
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * Agents whose cooldown end is remembered. Series never carry an agent id (one series per agent
 * would let any status token grow the scrape without bound): agents are summed up.
 */
const MAX_TRACKED_AGENTS = 1000;

/**
 * The metrics, written by hand rather than with prom-client: the text format is simple, and
 * this keeps the bundle free of a dependency and its global registry.
 */
export function createHttpMetrics(clock: Clock): HttpMetrics {
  const rotations = new Map<string, number>();
  const bucketCounts = DURATION_BUCKETS.map(() => 0);
  let durationSum = 0;
  let durationCount = 0;
  let operatorCooldownUntil = 0;
  const agentCooldowns = new Map<number, number>();
  let health: HealthReport | undefined;

  return {
    recordRotation(outcome, durationSeconds) {
      rotations.set(outcome, (rotations.get(outcome) ?? 0) + 1);
      DURATION_BUCKETS.forEach((bound, index) => {
        if (durationSeconds <= bound) bucketCounts[index] = (bucketCounts[index] ?? 0) + 1;
      });
      durationSum += durationSeconds;
      durationCount += 1;
    },
    recordCooldown(principal, cooldownUntil) {
      const parsed = cooldownUntil === undefined ? Number.NaN : Date.parse(cooldownUntil);
      const until = Number.isFinite(parsed) && parsed > clock.now() ? parsed : 0;
      if (principal.kind === "operator") {
        operatorCooldownUntil = until;
        return;
      }
      agentCooldowns.delete(principal.agentId);
      if (until === 0) return;
      if (agentCooldowns.size >= MAX_TRACKED_AGENTS) {
        const now = clock.now();
        for (const [id, end] of agentCooldowns) if (end <= now) agentCooldowns.delete(id);
        // Still full: forget the oldest entry (a Map iterates in insertion order).
        const oldest = agentCooldowns.keys().next();
        if (agentCooldowns.size >= MAX_TRACKED_AGENTS && oldest.done !== true) {
          agentCooldowns.delete(oldest.value);
        }
      }
      agentCooldowns.set(principal.agentId, until);
    },
    recordHealth(report) {
      health = report;
    },
    render() {
      const lines: string[] = [
        "# HELP rekey_http_rotations_total Rotation requests by outcome (rotated, shared, dry_run, replayed, or an error code).",
        "# TYPE rekey_http_rotations_total counter",
      ];
      for (const [outcome, count] of [...rotations].sort()) {
        lines.push(`rekey_http_rotations_total{outcome="${escapeLabel(outcome)}"} ${count}`);
      }
      lines.push(
        "# HELP rekey_http_rotation_duration_seconds Time to answer POST /v1/rotate.",
        "# TYPE rekey_http_rotation_duration_seconds histogram",
      );
      DURATION_BUCKETS.forEach((bound, index) => {
        lines.push(
          `rekey_http_rotation_duration_seconds_bucket{le="${bound}"} ${bucketCounts[index] ?? 0}`,
        );
      });
      lines.push(
        `rekey_http_rotation_duration_seconds_bucket{le="+Inf"} ${durationCount}`,
        `rekey_http_rotation_duration_seconds_sum ${durationSum}`,
        `rekey_http_rotation_duration_seconds_count ${durationCount}`,
        "# HELP rekey_cooldown_remaining_seconds Seconds until the operator's withdrawal cooldown ends, and the longest of the agents' (0 when none).",
        "# TYPE rekey_cooldown_remaining_seconds gauge",
      );
      const now = clock.now();
      const remaining = (until: number) => Math.max(0, Math.ceil((until - now) / 1000));
      let agentsCooling = 0;
      let longestAgent = 0;
      for (const [id, until] of agentCooldowns) {
        if (until <= now) {
          agentCooldowns.delete(id);
          continue;
        }
        agentsCooling += 1;
        longestAgent = Math.max(longestAgent, remaining(until));
      }
      lines.push(
        `rekey_cooldown_remaining_seconds{principal="operator"} ${remaining(operatorCooldownUntil)}`,
        `rekey_cooldown_remaining_seconds{principal="agent"} ${longestAgent}`,
        "# HELP rekey_agents_in_cooldown Agents this process saw rotated whose withdrawal cooldown is running.",
        "# TYPE rekey_agents_in_cooldown gauge",
        `rekey_agents_in_cooldown ${agentsCooling}`,
      );
      if (health !== undefined) {
        lines.push(
          "# HELP rekey_store_readable 1 when the credential store reads (readiness).",
          "# TYPE rekey_store_readable gauge",
          `rekey_store_readable ${health.store.readable ? 1 : 0}`,
          "# HELP rekey_store_problems Leftovers the store reports (old temp files, a torn audit line...); rekey doctor lists them.",
          "# TYPE rekey_store_problems gauge",
          `rekey_store_problems ${health.store.problems.length}`,
          "# HELP rekey_upstream_up 1 when the faucet answered the last readiness check.",
          "# TYPE rekey_upstream_up gauge",
          `rekey_upstream_up ${health.upstream.ok ? 1 : 0}`,
        );
      }
      return `${lines.join("\n")}\n`;
    },
  };
}

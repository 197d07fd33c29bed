import type { Clock } from "@rekey/core";

/** Upper bounds (seconds) of the rotation duration histogram: a rotation is 2-3 faucet calls. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** What the endpoint counts, exposed as Prometheus text by `render()`. */
export interface HttpMetrics {
  /** Counts a finished `POST /v1/rotate`: `outcome` is rotated, shared, dry_run, replayed or an error code. */
  recordRotation(outcome: string, durationSeconds: number): void;
  /** Remembers when a principal's cooldown ends ("operator", "agent 7"). */
  recordCooldown(principal: string, cooldownUntil: string | undefined): void;
  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string;
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * Three metrics, written by hand rather than with prom-client: the text format is simple, and
 * this keeps the bundle free of a dependency and its global registry.
 */
export function createHttpMetrics(clock: Clock): HttpMetrics {
  const rotations = new Map<string, number>();
  const bucketCounts = DURATION_BUCKETS.map(() => 0);
  let durationSum = 0;
  let durationCount = 0;
  const cooldowns = new Map<string, number>();

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
      const until = cooldownUntil === undefined ? Number.NaN : Date.parse(cooldownUntil);
      cooldowns.set(principal, Number.isFinite(until) ? until : 0);
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
        "# HELP rekey_cooldown_remaining_seconds Seconds until the withdrawal cooldown of a principal ends (0 when none).",
        "# TYPE rekey_cooldown_remaining_seconds gauge",
      );
      const now = clock.now();
      for (const [principal, until] of [...cooldowns].sort()) {
        const remaining = Math.max(0, Math.ceil((until - now) / 1000));
        lines.push(
          `rekey_cooldown_remaining_seconds{principal="${escapeLabel(principal)}"} ${remaining}`,
        );
      }
      return `${lines.join("\n")}\n`;
    },
  };
}

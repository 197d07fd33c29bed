import type { Clock, HealthReport, Rekey } from "@rekey/core";

/** The answer `/readyz` and `/metrics` share: one health check per interval, whoever asks. */
export interface ReadinessCheck {
  /** The last health report at most `maxAgeMs` old, or a fresh one (one at a time). */
  current(): Promise<HealthReport>;
}

/**
 * Caches `rekey.health()`. `/readyz` needs no token and each check asks the faucet (`whoami`),
 * so without the cache anyone could make this process call the faucet as often as they like.
 * Concurrent callers share the check in flight. Throws nothing `health()` does not.
 */
export function createReadinessCheck(rekey: Rekey, clock: Clock, maxAgeMs: number): ReadinessCheck {
  let last: { report: HealthReport; checkedAt: number } | undefined;
  let inFlight: Promise<HealthReport> | undefined;
  return {
    current() {
      if (last !== undefined && clock.now() - last.checkedAt < maxAgeMs) {
        return Promise.resolve(last.report);
      }
      inFlight ??= (async () => {
        const checkedAt = clock.now();
        try {
          const report = await rekey.health();
          last = { report, checkedAt };
          return report;
        } finally {
          inFlight = undefined;
        }
      })();
      return inFlight;
    },
  };
}

/**
 * Readiness means "can serve": the store reads and the faucet answers. Leftovers the store
 * reports (an old temp file, a torn audit line) are for `doctor` and `/metrics`.
 */
export function isReady(report: HealthReport): boolean {
  return report.store.readable && report.upstream.ok;
}

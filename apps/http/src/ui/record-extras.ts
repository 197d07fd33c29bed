import {
  type DeepReadonly,
  deliveryStatusOf,
  keyScheduleOf,
  type PrincipalRecord,
} from "@rekey/core";
import { html, type SafeHtml } from "./html.js";

/**
 * What other features add to a principal's record, rendered when present: delivery targets
 * (`rekey deliver`: where each stands, as core's status says) and a rotation policy (`policy`:
 * a maximum key age and the next scheduled rotation).
 */

export interface DeliveryView {
  target: string;
  /** Where: a file, a command, a store or a URL (core's description, never a secret). */
  description: string;
  state: "current" | "stale" | "failing";
  detail?: string;
}

/** The record's delivery targets and how each stands, as core's `status` reports them. */
export function deliveriesOf(record: DeepReadonly<PrincipalRecord>): DeliveryView[] {
  return deliveryStatusOf(record).map((status) => {
    const detail =
      status.state === "failing"
        ? `${status.error?.code ?? "failed"}: ${status.error?.message ?? "the last attempt failed"}`
        : status.state === "stale"
          ? `holds ${status.deliveredFingerprint ?? "no key from rekey yet"}`
          : undefined;
    return {
      target: status.target,
      description: status.description,
      state: status.state,
      ...(detail === undefined ? {} : { detail }),
    };
  });
}

export interface PolicyView {
  /** Milliseconds. */
  maxAgeMs?: number;
  /** ISO-8601. */
  nextRotationAt?: string;
}

/**
 * The record's rotation policy (`rekey policy set`), if any, with its next rotation computed by
 * core as of `nowMs`.
 */
export function policyOf(record: DeepReadonly<PrincipalRecord>, nowMs = Date.now()): PolicyView {
  if (typeof record.policy?.maxAgeSeconds === "number") {
    // A stored window this Node cannot read shows no next rotation here (status names the error).
    let schedule: ReturnType<typeof keyScheduleOf>;
    try {
      schedule = keyScheduleOf(record, nowMs);
    } catch {
      schedule = undefined;
    }
    return {
      maxAgeMs: record.policy.maxAgeSeconds * 1000,
      ...(schedule?.nextRotationAt === undefined
        ? {}
        : { nextRotationAt: schedule.nextRotationAt }),
    };
  }
  return {};
}

/** "current 2 · stale 1 · failing 0", coloured; "none" without targets. */
export function renderDeliverySummary(deliveries: readonly DeliveryView[]): SafeHtml {
  if (deliveries.length === 0) return html`<span class="muted">none</span>`;
  const count = (state: DeliveryView["state"]) =>
    deliveries.filter((item) => item.state === state).length;
  const stale = count("stale");
  const failing = count("failing");
  return html`<span class="ok">${count("current")} current</span>${stale > 0 ? html` · <span class="warn">${stale} stale</span>` : ""}${failing > 0 ? html` · <span class="bad">${failing} failing</span>` : ""}`;
}

/** The key age class against the policy's maximum: "" (fine), "warn" (past 80 %), "bad" (past). */
export function ageClass(ageMs: number, policy: PolicyView): string {
  if (policy.maxAgeMs === undefined) return "";
  if (ageMs >= policy.maxAgeMs) return "bad";
  return ageMs >= policy.maxAgeMs * 0.8 ? "warn" : "";
}
